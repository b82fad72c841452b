/**
 * The demo's processes: `tsx demo/main.ts client`, `tsx demo/main.ts
 * resource-server` or `tsx demo/main.ts mcp-server`. scripts/start.ts runs both next to the authz service and
 * the gateway. Settings come from the environment, which start.ts fills from
 * the gatehouse configuration file:
 *
 *   DEMO_ISSUER         the gatehouse issuer (default http://localhost:8080)
 *   DEMO_CLIENT_ID      default demo-app
 *   DEMO_REDIRECT_URI   default http://localhost:3000/callback; the client listens on its port
 *   DEMO_SCOPE          default "openid profile email profile:read notes:read"
 *   DEMO_API_BASE       where the client calls the API: the gateway (default: the issuer)
 *   DEMO_API_PORT       where the resource server listens (default 3001, loopback only)
 *   DEMO_MCP_PORT       where the demo MCP server listens (default 3002, loopback only)
 */
import { createDemoClient } from "./demo-client.js";
import { createDemoResourceServer } from "./demo-resource-server.js";
import { createDemoMcpServer } from "./demo-mcp-server.js";

async function main(): Promise<void> {
  const role = process.argv[2];
  const issuer = process.env.DEMO_ISSUER ?? "http://localhost:8080";
  if (role === "client") {
    const redirectUri = process.env.DEMO_REDIRECT_URI ?? "http://localhost:3000/callback";
    const app = await createDemoClient({
      issuer,
      clientId: process.env.DEMO_CLIENT_ID ?? "demo-app",
      redirectUri,
      scope: process.env.DEMO_SCOPE ?? "openid profile email profile:read notes:read",
      apiBase: process.env.DEMO_API_BASE ?? issuer,
    });
    const port = Number(new URL(redirectUri).port || 80);
    await app.listen({ host: "127.0.0.1", port });
    process.stdout.write(`demo client listening on http://127.0.0.1:${port}\n`);
    const stop = () => void app.close().then(() => process.exit(0));
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    return;
  }
  if (role === "resource-server") {
    const port = Number(process.env.DEMO_API_PORT ?? 3001);
    const server = createDemoResourceServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    process.stdout.write(`demo resource server listening on http://127.0.0.1:${port}\n`);
    const stop = () => server.close(() => process.exit(0));
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    return;
  }
  if (role === "mcp-server") {
    const port = Number(process.env.DEMO_MCP_PORT ?? 3002);
    const server = createDemoMcpServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    process.stdout.write(`demo MCP server listening on http://127.0.0.1:${port}/mcp\n`);
    const stop = () => server.close(() => process.exit(0));
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    return;
  }
  throw new Error("usage: demo/main.ts client|resource-server|mcp-server");
}

main().catch((error: unknown) => {
  process.stderr.write(`gatehouse demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
