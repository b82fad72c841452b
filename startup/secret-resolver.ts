import { readFileSync } from "node:fs";
import type { Environment } from "./environment.js";
import type { SecretReference } from "./secret-reference.js";

/** Resolves secret references for one configuration; see createSecretResolver. */
export interface SecretResolver {
  /**
   * The secret's value (a file's content trimmed), or undefined after pushing
   * a problem at `path`: an unset or empty variable, an unreadable file.
   */
  resolve(reference: SecretReference, path: string): string | undefined;
  /** The files referenced so far, readable or not: a change to one reloads the configuration. */
  sources(): string[];
}

/**
 * A resolver that reads `{ env }` references from `env` (never process.env)
 * and `{ file }` references from disk, pushing each problem to `problems`
 * with its path in the file, so that one run lists them all.
 */
export function createSecretResolver(env: Environment, problems: string[]): SecretResolver {
  const files: string[] = [];
  return {
    resolve(reference, path) {
      if ("env" in reference) {
        const value = env[reference.env];
        if (value === undefined || value === "") {
          problems.push(`${path}: environment variable ${reference.env} is not set`);
          return undefined;
        }
        return value;
      }
      // Recorded before reading: a file that appears later (a Secret mounted late) reloads too.
      files.push(reference.file);
      try {
        return readFileSync(reference.file, "utf8").trim();
      } catch (error) {
        problems.push(`${path}: cannot read ${reference.file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
        return undefined;
      }
    },
    sources: () => [...files],
  };
}
