import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** The identity headers the gateway's guard writes after it verified the token (config: gateway.guard.identityHeaders). */
export interface IdentityHeaders {
  subject: string;
  client: string;
  scope: string;
}

export const DEFAULT_IDENTITY_HEADERS: IdentityHeaders = { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" };

/**
 * The demo API: a small resource server meant to sit behind the gatehouse
 * gateway, which checks the bearer token and the scope of each route and
 * passes the verified identity in headers. It trusts those headers because
 * it listens on loopback only and the gateway strips any a caller sent
 * (../shared/DESIGN.md, the guard). Without them it refuses: it is not meant
 * to be reached around the gateway.
 *
 *   GET  /api/profile   who is calling (scope profile:read)
 *   GET  /api/notes     the caller's notes (scope notes:read)
 *   POST /api/notes     add a note, JSON {"text": "..."} (scope notes:write)
 */
export function createDemoResourceServer(identity: IdentityHeaders = DEFAULT_IDENTITY_HEADERS): Server {
  const notes = new Map<string, Array<{ id: number; text: string; createdAt: string }>>();
  let nextId = 1;
  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    response.end(JSON.stringify(body));
  };
  const header = (request: IncomingMessage, name: string) => {
    const value = request.headers[name.toLowerCase()];
    return typeof value === "string" && value !== "" ? value : undefined;
  };

  return createServer((request, response) => {
    const subject = header(request, identity.subject);
    const client = header(request, identity.client);
    const scope = header(request, identity.scope) ?? "";
    const path = (request.url ?? "/").split("?")[0];
    if (subject === undefined || client === undefined) {
      send(response, 401, { error: "this API is reached through the gatehouse gateway, which verifies the caller" });
      return;
    }
    if (request.method === "GET" && path === "/api/profile") {
      send(response, 200, { subject, client, scope: scope.split(" ").filter(Boolean), served: new Date().toISOString() });
      return;
    }
    if (request.method === "GET" && path === "/api/notes") {
      const mine = notes.get(subject) ?? [{ id: 0, text: `Welcome, ${subject}. This note comes from the demo API, via the gateway.`, createdAt: new Date(0).toISOString() }];
      send(response, 200, { subject, notes: mine });
      return;
    }
    if (request.method === "POST" && path === "/api/notes") {
      let body = "";
      request.setEncoding("utf8");
      request.on("data", (chunk: string) => {
        body += chunk;
        if (body.length > 4_096) request.destroy();
      });
      request.on("end", () => {
        let text: unknown;
        try {
          text = (JSON.parse(body) as { text?: unknown }).text;
        } catch {
          text = undefined;
        }
        if (typeof text !== "string" || text === "" || text.length > 1_000) {
          send(response, 400, { error: 'send JSON {"text": "..."} with 1 to 1000 characters' });
          return;
        }
        const note = { id: nextId++, text, createdAt: new Date().toISOString() };
        notes.set(subject, [...(notes.get(subject) ?? []), note]);
        send(response, 201, note);
      });
      return;
    }
    send(response, 404, { error: "not found" });
  });
}
