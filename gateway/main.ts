import { pino } from "pino";
import { buildApp } from "./app.js";
import { loadGatewayConfig } from "./config.js";
import { createGatewayDeps } from "./deps.js";
import { installLeanAsyncResourceBind } from "../startup/lean-async-resource-bind.js";
import { exitOnStartFailure, superviseProcess } from "../startup/supervise-process.js";

/** The gateway's process: the only file with side effects. */
async function main(): Promise<void> {
  // Every call to the authz service is an HTTP/2 request; Node 20 binds one function per request the costly way.
  installLeanAsyncResourceBind();
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
  superviseProcess({
    log,
    sources: config.sources,
    reload: () => ({ ...deps.reload(loadGatewayConfig(process.env)), summary: { routes: deps.routes().length } }),
    drain: async (signal) => {
      draining = true;
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
    },
  });
}

main().catch(exitOnStartFailure("gatehouse gateway"));
