// The example resource server: a notes API that knows nothing about OAuth.
// It listens on loopback only, so the one way in is its gatehouse sidecar,
// which lets a request through only with a live token whose scope covers the
// route, and writes the verified identity into X-Gatehouse-* headers. Those
// headers can be believed for exactly that reason: nothing else reaches here.
import { createServer } from "node:http";

const host = process.env.LISTEN_HOST ?? "127.0.0.1";
const port = Number(process.env.LISTEN_PORT ?? "3000");
/** subject -> that user's notes; in memory, it is an example. */
const notes = new Map();

const send = (response, status, body) => {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
};

const server = createServer((request, response) => {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (path === "/healthz") return send(response, 200, { status: "ok" });
  const subject = request.headers["x-gatehouse-subject"];
  if (typeof subject !== "string" || !path.startsWith("/api/notes/")) return send(response, 404, { error: "not_found" });
  const mine = notes.get(subject) ?? [];
  if (request.method === "GET" || request.method === "HEAD") {
    return send(response, 200, { subject, client: request.headers["x-gatehouse-client"], notes: mine });
  }
  if (request.method === "POST") {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => {
      body += chunk;
      if (body.length > 4096) request.destroy();
    });
    request.on("end", () => {
      const note = { id: mine.length + 1, text: body.slice(0, 1000) };
      notes.set(subject, [...mine, note]);
      send(response, 201, note);
    });
    return;
  }
  send(response, 405, { error: "method_not_allowed" });
});

server.listen(port, host, () => console.log(JSON.stringify({ msg: "notes-api listening", host, port })));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
