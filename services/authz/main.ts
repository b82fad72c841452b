import { pino } from "pino";
import { ConfigError, loadAuthzConfig } from "./config.js";
import { KeyRingError } from "./oauth/key-ring.js";
import { startAuthzService } from "./app.js";

/** The authz service's process: the only file with side effects. */
async function main(): Promise<void> {
  const config = loadAuthzConfig(process.env);
  const log = pino({ level: config.logLevel, base: { service: "gatehouse-authz" } });
  const service = await startAuthzService(config, log);
  log.info({ url: service.url, store: config.redis?.kind ?? "memory" }, "gatehouse authz service listening (Connect, gRPC, gRPC-Web)");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
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
