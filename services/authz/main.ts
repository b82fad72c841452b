import { pino } from "pino";
import { ConfigError, loadAuthzConfig } from "./config.js";
import { KeyRingError } from "./oauth/key-ring.js";
import { startAuthzService } from "./app.js";
import { watchFiles } from "../../startup/watch-files.js";

/** The authz service's process: the only file with side effects. */
async function main(): Promise<void> {
  const config = loadAuthzConfig(process.env);
  const log = pino({ level: config.logLevel, base: { service: "gatehouse-authz" } });
  const service = await startAuthzService(config, log);
  log.info({ url: service.url, store: config.redis?.kind ?? "memory" }, "gatehouse authz service listening (Connect, gRPC, gRPC-Web)");

  // Clients, scopes, users, lifetimes, limits and signing keys reload without
  // dropping a connection; a broken file is reported and the running one kept.
  let reloading = Promise.resolve();
  const reload = (reason: string) => {
    reloading = reloading.then(async () => {
      try {
        const { needsRestart } = await service.deps.reload(loadAuthzConfig(process.env));
        log.info({ reason, clients: service.deps.config.clients.size, activeKid: service.deps.keys.activeKid }, "configuration reloaded");
        if (needsRestart.length > 0) log.warn({ settings: needsRestart }, "these settings changed but take effect only after a restart");
      } catch (error) {
        const problems = error instanceof ConfigError ? error.problems : [error instanceof Error ? error.message : String(error)];
        log.error({ reason, problems }, "configuration not reloaded; the running one stays");
      }
    });
  };
  process.on("SIGHUP", () => reload("SIGHUP"));
  const stopWatching = watchFiles(config.sources, () => reload("file change"));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    stopWatching();
    log.info({ signal, graceMs: config.drainTimeoutMs }, "draining");
    await service.close(config.drainTimeoutMs);
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof KeyRingError) {
    process.stderr.write(`gatehouse authz: ${error.message}\n`);
  } else {
    process.stderr.write(`gatehouse authz: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  }
  process.exit(1);
});
