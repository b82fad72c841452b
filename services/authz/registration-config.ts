import { z } from "zod";
import type { RegistrationPolicy } from "./oauth/model.js";
import { REGISTRATION_OFF } from "./oauth/registration.js";
import { hashSecret } from "./oauth/secrets.js";
import { secretReference, type SecretReference } from "../../startup/secret-reference.js";

/**
 * A tenant's (or the top level's) `registration` section (issue 15; README,
 * "Client registration"): RFC 7591 dynamic registration and Client ID
 * Metadata Documents. Kept apart from config.ts, which only plugs it in.
 */
export const registrationSchema = z
  .strictObject({
    policy: z.enum(["off", "initialAccessToken", "open"]).default("off"),
    /** RFC 7591 §3 initial access tokens, as secret references (never in the YAML). */
    initialAccessTokens: z.array(secretReference).default([]),
    rateLimit: z
      .strictObject({ max: z.number().int().min(1).max(100_000), windowSeconds: z.number().int().min(1).max(86_400) })
      .default({ max: REGISTRATION_OFF.rateLimit.max, windowSeconds: REGISTRATION_OFF.rateLimit.windowSeconds }),
    allowConfidential: z.boolean().default(false),
    scopes: z.array(z.string()).default([]),
    unusedClientTtlSeconds: z.number().int().min(60).max(365 * 86_400).default(REGISTRATION_OFF.unusedClientTtlSeconds),
    touchIntervalSeconds: z.number().int().min(1).max(86_400).default(REGISTRATION_OFF.touchIntervalSeconds),
    clientIdMetadataDocuments: z.boolean().default(false),
  })
  .optional();

/** Initial access tokens are bearer secrets: at least this long (≥ 128 bits as base64url). */
const MIN_TOKEN_LENGTH = 22;

/**
 * The policy from the section at `at` ("registration" or
 * "tenants[i].registration"), with its problems: an initialAccessToken policy
 * without tokens, short tokens, scopes the tenant does not define.
 */
export function buildRegistrationPolicy(
  section: z.infer<typeof registrationSchema>,
  at: string,
  context: { scopes: ReadonlySet<string>; resolve: (ref: SecretReference, path: string) => string | undefined },
  problems: string[],
): RegistrationPolicy | undefined {
  if (section === undefined) return undefined;
  const hashes = section.initialAccessTokens.flatMap((ref, i) => {
    const value = context.resolve(ref, `${at}.initialAccessTokens[${i}]`)?.trim();
    if (value === undefined) return [];
    if (value.length < MIN_TOKEN_LENGTH) {
      problems.push(`${at}.initialAccessTokens[${i}]: the referenced token must be at least ${MIN_TOKEN_LENGTH} characters (openssl rand -base64 32)`);
      return [];
    }
    return [hashSecret(value)];
  });
  if (section.policy === "initialAccessToken" && section.initialAccessTokens.length === 0) {
    problems.push(`${at}.initialAccessTokens: the initialAccessToken policy needs at least one token`);
  }
  section.scopes.forEach((scope, j) => {
    if (!context.scopes.has(scope)) problems.push(`${at}.scopes[${j}]: unknown scope ${JSON.stringify(scope)} (define it under scopes)`);
  });
  if (section.touchIntervalSeconds * 2 > section.unusedClientTtlSeconds) {
    problems.push(`${at}.touchIntervalSeconds: must be at most half of unusedClientTtlSeconds, or a client in use could expire between two recorded uses`);
  }
  return Object.freeze({
    mode: section.policy === "initialAccessToken" ? "initial-access-token" : section.policy,
    initialAccessTokenHashes: hashes,
    rateLimit: section.rateLimit,
    allowConfidential: section.allowConfidential,
    scopes: section.scopes,
    unusedClientTtlSeconds: section.unusedClientTtlSeconds,
    touchIntervalSeconds: section.touchIntervalSeconds,
    clientIdMetadataDocuments: section.clientIdMetadataDocuments,
  });
}
