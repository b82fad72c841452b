/**
 * Thrown with every problem of a configuration, each prefixed by its path in
 * the file ("clients[2].redirectUris[0]: ...") or the environment variable it
 * came from. One class for both processes: each main.ts prints the message
 * and exits, and on a reload logs `problems` and keeps the running one.
 */
export class ConfigError extends Error {
  /**
   * @param problems every problem found, in the order found
   * @param subject what the message calls the configuration ("gateway configuration")
   */
  constructor(
    readonly problems: readonly string[],
    subject = "configuration",
  ) {
    super(`invalid ${subject}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}
