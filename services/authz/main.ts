import { pino } from "pino";
import { loadAuthzConfig } from "./config.js";
import { KeyRingError } from "./oauth/key-ring.js";
import { startAuthzService } from "./app.js";
import { exitOnStartFailure, superviseProcess } from "../../startup/supervise-process.js";

/** The authz service's process: the only file with side effects. */
async function main(): Promise<void> {
  const config = loadAuthzConfig(process.env);
  const log = pino({ level: config.logLevel, base: { service: "gatehouse-authz" } });
  const service = await startAuthzService(config, log);
  log.info({ url: service.url, store: config.redis?.kind ?? "memory" }, "gatehouse authz service listening (Connect, gRPC, gRPC-Web)");

  // Clients, scopes, users, lifetimes, limits and signing keys reload without
  // dropping a connection; a broken file is reported and the running one kept.
  superviseProcess({
    log,
    sources: config.sources,
    reload: async () => ({
      ...(await service.deps.reload(loadAuthzConfig(process.env))),
      summary: { clients: service.deps.config.clients.size, activeKid: service.deps.keys.activeKid },
    }),
    drain: async (signal) => {
      log.info({ signal, graceMs: config.drainTimeoutMs }, "draining");
      await service.close(config.drainTimeoutMs);
    },
  });
}

main().catch(exitOnStartFailure("gatehouse authz", [KeyRingError]));
