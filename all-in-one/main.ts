import { pino } from "pino";
import { KeyRingError } from "../services/authz/oauth/key-ring.js";
import { exitOnStartFailure, superviseProcess } from "../startup/supervise-process.js";
import { startAllInOne } from "./app.js";
import { loadAllInOneConfig } from "./config.js";

/** The all-in-one process (gateway and authz service together): the only file with side effects. */
async function main(): Promise<void> {
  const config = loadAllInOneConfig(process.env);
  const log = pino({
    level: config.gateway.logLevel,
    base: { service: "gatehouse" },
    // Tokens and secrets never reach the log: no headers, no query strings, no bodies.
    redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization"], remove: true },
  });
  let draining = false;
  const running = await startAllInOne({
    authz: config.authz,
    gateway: config.gateway,
    serveRpc: config.serveRpc,
    inProcess: config.inProcess,
    log: { authz: log.child({ component: "authz" }), gateway: log.child({ component: "gateway" }) },
    gatewayOverrides: { draining: () => draining },
  });
  log.info(
    {
      url: config.gateway.issuer,
      listen: `${config.gateway.listen.host}:${config.gateway.listen.port}`,
      rpc: running.rpc?.url ?? "not served (allInOne.serveRpc: false)",
      inProcess: config.inProcess,
      store: config.authz.redis?.kind ?? "memory",
    },
    "gatehouse all-in-one listening (gateway and authz service in one process)",
  );

  // Both sides reload from the one file without dropping a connection; a broken file is reported and the running one kept.
  superviseProcess({
    log,
    sources: config.sources,
    reload: async () => {
      const next = loadAllInOneConfig(process.env);
      // The gateway's credential takes effect only at a restart; the service keeps the one that matches it.
      const credentialChanged = next.authz.serviceCredential !== config.authz.serviceCredential;
      const authz = await running.authz.deps.reload(credentialChanged ? { ...next.authz, serviceCredential: config.authz.serviceCredential } : next.authz);
      const gateway = running.gatewayDeps.reload(next.gateway);
      const needsRestart = [...authz.needsRestart, ...gateway.needsRestart.map((key) => `gateway.${key}`)];
      if (credentialChanged) needsRestart.push("authz.serviceCredential");
      if (next.serveRpc !== config.serveRpc || next.inProcess !== config.inProcess) needsRestart.push("allInOne");
      return { needsRestart, summary: { clients: running.authz.deps.config.clients.size, routes: running.gatewayDeps.routes().length } };
    },
    drain: async (signal) => {
      draining = true;
      const graceMs = Math.max(config.gateway.drainTimeoutMs, config.authz.drainTimeoutMs);
      log.info({ signal, graceMs }, "draining");
      const deadline = setTimeout(() => {
        log.warn("drain timeout: closing the remaining connections");
        running.gateway.server.closeAllConnections();
      }, config.gateway.drainTimeoutMs);
      deadline.unref();
      // Connections that finish their last request while draining close at once.
      const sweep = setInterval(() => running.gateway.server.closeIdleConnections(), 50);
      await running.close(config.authz.drainTimeoutMs);
      clearInterval(sweep);
    },
  });
}

main().catch(exitOnStartFailure("gatehouse all-in-one", [KeyRingError]));
