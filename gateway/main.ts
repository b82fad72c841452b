import { pino } from "pino";
import { buildApp } from "./app.js";
import { ConfigError, loadGatewayConfig } from "./config.js";
import { createGatewayDeps } from "./deps.js";
import { watchFiles } from "../startup/watch-files.js";

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
  log.info(
    { url: config.issuer, listen: `${config.listen.host}:${config.listen.port}`, mode: config.authz.serviceCredential === undefined ? "guard only" : "oauth endpoints and guard" },
    "gatehouse gateway listening",
  );

  // The route table reloads without dropping a connection; a broken file is
  // reported and the running table kept.
  const reload = (reason: string) => {
    try {
      const { needsRestart } = deps.reload(loadGatewayConfig(process.env));
      log.info({ reason, routes: deps.routes().length }, "configuration reloaded");
      if (needsRestart.length > 0) log.warn({ settings: needsRestart }, "these settings changed but take effect only after a restart");
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [error instanceof Error ? error.message : String(error)];
      log.error({ reason, problems }, "configuration not reloaded; the running one stays");
    }
  };
  process.on("SIGHUP", () => reload("SIGHUP"));
  const stopWatching = watchFiles(config.sources, () => reload("file change"));

  const stop = async (signal: string) => {
    if (draining) return;
    draining = true;
    stopWatching();
    log.info({ signal, graceMs: config.drainTimeoutMs }, "draining");
    const deadline = setTimeout(() => {
      log.warn("drain timeout: closing the remaining connections");
      app.server.closeAllConnections();
    }, config.drainTimeoutMs);
    deadline.unref();
    // Connections that finish their last request while draining close at once,
    // instead of waiting out their keep-alive timeout.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    await app.close();
    clearInterval(sweep);
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(
    error instanceof ConfigError ? `gatehouse gateway: ${error.message}\n` : `gatehouse gateway: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
