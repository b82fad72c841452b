import type { Environment } from "./environment.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/**
 * pino's level from LOG_LEVEL, `info` when unset. An unknown level is a
 * problem listed with the others, rather than pino throwing at start-up.
 */
export function logLevel(env: Environment, problems: string[]): string {
  const level = env.LOG_LEVEL;
  if (level === undefined || level === "") return "info";
  if (!LOG_LEVELS.includes(level)) problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
  return level;
}
