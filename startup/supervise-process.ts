import type { Logger } from "pino";
import { ConfigError } from "./config-error.js";
import { watchFiles } from "./watch-files.js";

/** What a process does when told to reload or to stop; main.ts supplies it. */
export interface ProcessControl {
  log: Logger;
  /** The files the configuration came from (the YAML and referenced secrets): a change to one reloads. */
  sources: readonly string[];
  /**
   * Reads the configuration again and applies it. Throwing (a ConfigError
   * listing the problems) keeps the running configuration. Returns the
   * settings that changed but take effect only at a restart, and a few
   * figures for the log line.
   */
  reload(): Promise<{ needsRestart: readonly string[]; summary?: Record<string, unknown> }> | { needsRestart: readonly string[]; summary?: Record<string, unknown> };
  /** Drains and releases everything; the process exits 0 afterwards. */
  drain(signal: string): Promise<void>;
}

/**
 * What every gatehouse process does once it listens, in one place for the
 * gateway, the authz service and the all-in-one process: reload on SIGHUP or
 * on a change of any file the configuration came from (one reload at a time;
 * a broken file is reported and the running configuration kept), and drain on
 * SIGTERM or SIGINT (once), then exit 0.
 */
export function superviseProcess(control: ProcessControl): void {
  const { log } = control;
  let reloading = Promise.resolve();
  const reload = (reason: string) => {
    reloading = reloading.then(async () => {
      try {
        const { needsRestart, summary } = await control.reload();
        log.info({ reason, ...summary }, "configuration reloaded");
        if (needsRestart.length > 0) log.warn({ settings: needsRestart }, "these settings changed but take effect only after a restart");
      } catch (error) {
        const problems = error instanceof ConfigError ? error.problems : [error instanceof Error ? error.message : String(error)];
        log.error({ reason, problems }, "configuration not reloaded; the running one stays");
      }
    });
  };
  process.on("SIGHUP", () => reload("SIGHUP"));
  const stopWatching = watchFiles(control.sources, () => reload("file change"));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    stopWatching();
    await control.drain(signal);
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

/**
 * The end of a process that could not start: a configuration problem (or
 * another error the operator can act on, in `expected`) is printed as its
 * message alone, anything else with its stack; exit 1.
 */
export function exitOnStartFailure(name: string, expected: ReadonlyArray<abstract new (...args: never[]) => Error> = []): (error: unknown) => never {
  return (error) => {
    const known = error instanceof ConfigError || expected.some((type) => error instanceof type);
    process.stderr.write(
      known ? `${name}: ${(error as Error).message}\n` : `${name}: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exit(1);
  };
}
