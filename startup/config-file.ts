import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError } from "./config-error.js";
import type { Environment } from "./environment.js";

/**
 * Reads the configuration file that GATEHOUSE_CONFIG names (without it, the
 * checkout's config/dev.yaml) and hands its text to `parse`. A file that
 * cannot be read is one problem, at the file's path. The result is frozen,
 * and the file itself is the first of its `sources`: a change to any of them
 * reloads the configuration (startup/watch-files.ts).
 *
 * @param subject what the error calls the configuration ("gateway configuration")
 */
export function loadConfigFile<C extends { sources: readonly string[] }>(
  env: Environment,
  subject: string,
  parse: (text: string, path: string) => C,
): C {
  const path = env.GATEHOUSE_CONFIG ?? resolve("config/dev.yaml");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError([`${path}: cannot read the configuration file (${(error as NodeJS.ErrnoException).code ?? String(error)})`], subject);
  }
  const config = parse(text, path);
  return Object.freeze({ ...config, sources: Object.freeze([path, ...config.sources]) });
}
