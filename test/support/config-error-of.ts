import { ConfigError } from "../../startup/config-error.js";

/** The ConfigError that `run` throws; fails the test if it throws anything else or nothing. */
export function configErrorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError, the configuration was accepted");
}
