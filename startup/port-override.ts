import type { Environment } from "./environment.js";

/**
 * The listening port: the environment variable `name` when set (a container
 * platform assigns ports), else the file's `port`. A value that is not a port
 * number (0 to 65535, digits only) is a problem at the variable's name.
 */
export function portOverride(env: Environment, name: string, port: number, problems: string[]): number {
  const value = env[name];
  if (value === undefined || value === "") return port;
  const override = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(override) || override > 65535) {
    problems.push(`${name}: must be a port number, got ${JSON.stringify(value)}`);
    return port;
  }
  return override;
}
