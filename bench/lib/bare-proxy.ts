/**
 * Baseline (b) of bench:guard: a bare http-proxy in front of the upstream,
 * with a keep-alive agent and nothing else: no routing, no check, no header
 * rewrite. (The product's only http-proxy user is gateway/plugins/proxy.ts;
 * this is the yardstick it is measured against.) PORT and TARGET from the
 * environment.
 */
import { Agent, createServer } from "node:http";
import httpProxy from "http-proxy";

const agent = new Agent({ keepAlive: true });
const proxy = httpProxy.createProxyServer({ target: process.env.TARGET, agent });
proxy.on("error", (_error, _req, res) => {
  if ("writeHead" in res && !res.headersSent) res.writeHead(502).end();
});
const server = createServer((req, res) => proxy.web(req, res));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`bare proxy listening on ${typeof address === "object" && address !== null ? address.port : "?"}\n`);
});
process.once("SIGTERM", () => {
  server.close();
  agent.destroy();
  process.exit(0);
});
