import { pino } from "pino";
import { buildApp } from "./app.js";
import { GatewayConfigError, loadGatewayConfig } from "./config.js";
import { createGatewayDeps } from "./deps.js";

/** The gateway's process: the only file with side effects. */
async function main(): Promise<void> {
  const config = loadGatewayConfig(process.env);
  const log = pino({
    level: config.logLevel,
    base: { service: "gatehouse-gateway" },
    // Tokens and secrets never reach the log: no headers, no query strings, no bodies.
    redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization"], remove: true },
  });
  let draining = false;
  const deps = createGatewayDeps(config, log, { draining: () => draining });
  const app = await buildApp(deps);
  await app.listen({ host: config.listen.host, port: config.listen.port });
  log.info({ url: config.issuer, listen: `${config.listen.host}:${config.listen.port}` }, "gatehouse gateway listening");

  const stop = async (signal: string) => {
    if (draining) return;
    draining = true;
    log.info({ signal, graceMs: config.drainTimeoutMs }, "draining");
    const deadline = setTimeout(() => {
      log.warn("drain timeout: closing the remaining connections");
      app.server.closeAllConnections();
    }, config.drainTimeoutMs);
    deadline.unref();
    await app.close();
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(
    error instanceof GatewayConfigError ? `gatehouse gateway: ${error.message}\n` : `gatehouse gateway: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
