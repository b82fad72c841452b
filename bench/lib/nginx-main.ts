/**
 * nginx as a process of the benchmark (test/support/nginx.ts): PORT, UPSTREAM
 * (host:port), and either GATEHOUSE (host:port; the guard's auth_request
 * locations) or PLAIN=1 (the same nginx proxying without auth_request).
 */
import { startNginx } from "../../test/support/nginx.js";

const nginx = await startNginx({
  port: Number(process.env.PORT),
  upstream: process.env.UPSTREAM!,
  gatehouse: process.env.GATEHOUSE ?? "127.0.0.1:1",
  checkPath: process.env.CHECK_PATH ?? "/.gatehouse/check",
  identityHeaders: { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" },
  plainProxy: process.env.PLAIN === "1",
  workerConnections: 4096,
  // nginx closes a client connection after 1,000 requests by default; the load generator then counts an
  // error for a request caught in the close. The other phases' servers keep connections open, so nginx does too.
  keepaliveRequests: 1_000_000,
});
process.stdout.write(`nginx listening on ${nginx.port}\n`);
process.once("SIGTERM", () => void nginx.close().then(() => process.exit(0)));
