import { parse } from "yaml";
import { z } from "zod";
import { parseAuthzConfig, type AuthzConfig } from "../services/authz/config.js";
import type { InProcessKind } from "../services/authz/transport/in-process-transport.js";
import { parseGatewayConfig, type GatewayConfig } from "../gateway/config.js";
import { ConfigError } from "../startup/config-error.js";
import { loadConfigFile } from "../startup/config-file.js";
import { deepFreeze } from "../startup/deep-freeze.js";
import type { Environment } from "../startup/environment.js";

export { ConfigError } from "../startup/config-error.js";

/**
 * The all-in-one process's configuration: the same one YAML file as the two
 * processes (GATEHOUSE_CONFIG), read once and validated by both sides' own
 * parsers, plus the optional `allInOne` section of its own:
 *
 * ```yaml
 * allInOne:
 *   serveRpc: true        # also serve the RPC port (authz.host/port) for internal services
 *   inProcess: direct     # how the gateway calls the service: direct (default) or router
 * ```
 *
 * Every problem of either side and of this section is reported at once.
 */
export interface AllInOneConfig {
  readonly authz: AuthzConfig;
  readonly gateway: GatewayConfig;
  /**
   * True (default): the authz service also listens on authz.host/port, so
   * resource servers and other internal services still reach Introspect and
   * the other RPCs; false: the gateway's port is the process's only one.
   */
  readonly serveRpc: boolean;
  /** The gateway's way to the service in this process (services/authz/transport/in-process-transport.ts). */
  readonly inProcess: InProcessKind;
  /** The files the configuration was read from: a change to one reloads it. */
  readonly sources: readonly string[];
}

const sectionSchema = z
  .strictObject({
    serveRpc: z.boolean().default(true),
    inProcess: z.enum(["direct", "router"]).default("direct"),
  })
  .default({ serveRpc: true, inProcess: "direct" });

const SUBJECT = "all-in-one configuration";

/** Reads and validates the configuration; `env` is process.env at the only call site (main.ts). */
export function loadAllInOneConfig(env: Environment): AllInOneConfig {
  return loadConfigFile(env, SUBJECT, (text, path) => parseAllInOneConfig(text, env, path));
}

/** Validates configuration text with both sides' parsers and this section's schema; every problem is reported. */
export function parseAllInOneConfig(text: string, env: Environment, source = "config"): AllInOneConfig {
  const problems: string[] = [];
  const attempt = <T>(parseSide: () => T): T | undefined => {
    try {
      return parseSide();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  };
  const authz = attempt(() => parseAuthzConfig(text, env, source));
  const gateway = attempt(() => parseGatewayConfig(text, env, source));
  let section: z.infer<typeof sectionSchema> | undefined;
  try {
    const raw = parse(text) as unknown;
    const record = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
    const parsed = sectionSchema.safeParse(record.allInOne);
    if (parsed.success) section = parsed.data;
    else problems.push(...parsed.error.issues.map((issue) => `allInOne${issue.path.map((p) => `.${String(p)}`).join("")}: ${issue.message}`));
  } catch {
    // Unparseable YAML: both sides reported it already.
  }
  if (
    authz !== undefined &&
    gateway !== undefined &&
    gateway.authz.serviceCredential !== authz.serviceCredential &&
    !authz.serviceCredentials.some((credential) => credential.secret === gateway.authz.serviceCredential)
  ) {
    // The in-process calls go through the same caller check as the RPC port: with two different
    // credentials every browser endpoint would fail, so the process does not start.
    problems.push("gateway.authz.serviceCredential: must be the same secret as (one of) authz.serviceCredential in the all-in-one process");
  }
  if (problems.length > 0 || authz === undefined || gateway === undefined || section === undefined) throw new ConfigError(problems, SUBJECT);
  return deepFreeze({
    authz,
    gateway,
    serveRpc: section.serveRpc,
    inProcess: section.inProcess,
    sources: [...new Set([...authz.sources, ...gateway.sources])],
  });
}
