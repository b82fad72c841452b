import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { DEFAULT_IDENTITY_HEADERS, type IdentityHeaders } from "./demo-resource-server.js";

/** The path the demo MCP server answers at; the gateway's route `/mcp` is the protected resource `{issuer}/mcp`. */
export const MCP_PATH = "/mcp";

/**
 * The demo MCP server (issue 15): a remote MCP server built with the official
 * SDK (`McpServer` over the Streamable HTTP transport, stateless, JSON
 * responses) with no authorization code of its own. It sits behind the
 * gatehouse gateway, which makes it an OAuth protected resource: the gateway
 * serves its RFC 9728 metadata, answers 401 with `resource_metadata`, and lets
 * through only tokens whose `aud` is this server's URI, writing the verified
 * identity into headers. Like the demo API it trusts those headers because it
 * listens on loopback only; without them it refuses.
 *
 * One tool, `whoami`: the caller's identity as the guard asserted it.
 */
export function createDemoMcpServer(options: { path?: string; name?: string; identity?: IdentityHeaders } = {}): Server {
  const identity = options.identity ?? DEFAULT_IDENTITY_HEADERS;
  const mcpPath = options.path ?? MCP_PATH;
  const serverName = options.name ?? "gatehouse-demo-mcp";
  const header = (headers: IncomingMessage["headers"], name: string) => {
    const value = headers[name.toLowerCase()];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const refuse = (response: ServerResponse, status: number, message: string) => {
    response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    response.end(JSON.stringify({ error: message }));
  };

  return createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" });
      response.end("ok");
      return;
    }
    if (path !== mcpPath) return refuse(response, 404, "not found");
    const subject = header(request.headers, identity.subject);
    const client = header(request.headers, identity.client);
    if (subject === undefined || client === undefined) {
      return refuse(response, 401, "this MCP server is reached through the gatehouse gateway, which verifies the caller");
    }
    const scope = header(request.headers, identity.scope) ?? "";

    // Stateless (no MCP session): one server and transport per HTTP request.
    const server = new McpServer({ name: serverName, version: "1.0.0" });
    server.registerTool(
      "whoami",
      {
        title: "Who am I?",
        description: "The caller's identity as the gatehouse guard verified it: subject, client and scopes of the access token.",
      },
      async () => {
        const who = { subject, client, scope: scope.split(" ").filter(Boolean) };
        return { content: [{ type: "text", text: JSON.stringify(who) }], structuredContent: who };
      },
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    response.on("close", () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(request, response))
      .catch(() => {
        if (!response.headersSent) refuse(response, 500, "the MCP server failed");
      });
  });
}
