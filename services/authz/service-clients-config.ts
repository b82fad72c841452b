import { z } from "zod";
import { ASYMMETRIC_ALGORITHMS, DEFAULT_CLIENT_ASSERTION_POLICY } from "./oauth/client-assertion.js";
import type { ClientAssertionPolicy, ServiceAccountIssuer, ServiceClientPolicy } from "./oauth/model.js";
import { secretReference } from "../../startup/secret-reference.js";

/**
 * The configuration of services calling services (issue 14): a client's
 * `service` section (client credentials, private_key_jwt, token exchange),
 * `authz.clientAssertions`, `authz.fetch` and `serviceAccountIssuers`. Kept
 * apart from config.ts, which only plugs these schemas in.
 */

/** A public JWK of an asymmetric key (RFC 7517 §4): no private members, never a symmetric `oct` key. */
const publicJwk = z
  .looseObject({ kty: z.enum(["EC", "RSA", "OKP"]), kid: z.string().min(1).optional(), alg: z.enum(ASYMMETRIC_ALGORITHMS).optional() })
  .refine((jwk) => !("d" in jwk) && !("p" in jwk) && !("q" in jwk), "must be a public key: remove the private members (d, p, q, ...)");
const jwkSet = z.strictObject({ keys: z.array(publicJwk).min(1) });
const httpsUrl = z.string().regex(/^https:\/\/[^\s#]+$/, "must be an https:// URL without a fragment");
const absoluteUri = z.string().refine((value) => {
  try {
    new URL(value);
    return !value.includes("#");
  } catch {
    return false;
  }
}, "must be an absolute URI without a fragment (RFC 8707 §2)");

export const serviceClientSchema = z
  .strictObject({
    jwks: jwkSet.optional(),
    jwksUri: httpsUrl.optional(),
    serviceAccount: z
      .strictObject({
        issuer: z.string().min(1),
        subject: z.string().regex(/^system:serviceaccount:[^:\s]+:[^:\s]+$/, "must be system:serviceaccount:{namespace}:{name}"),
      })
      .optional(),
    audiences: z.array(absoluteUri).default([]),
    defaultAudience: z.string().min(1).optional(),
    accessTokenLifetime: z.number().int().min(1).max(86_400).optional(),
    tokenRateLimit: z.strictObject({ max: z.number().int().min(1), windowSeconds: z.number().int().min(1).max(3_600).default(1) }).optional(),
    tokenExchange: z
      .strictObject({
        audiences: z.array(z.string().min(1)).min(1),
        scopes: z.array(z.string()).min(1),
        subjectAudiences: z.array(z.string().min(1)).optional(),
        impersonate: z.boolean().default(false),
      })
      .optional(),
  })
  .refine((service) => !(service.jwks !== undefined && service.jwksUri !== undefined), "give jwks or jwksUri, not both (OIDC Dynamic Registration §2)");

export const clientAssertionsSchema = z
  .strictObject({
    algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).default([...DEFAULT_CLIENT_ASSERTION_POLICY.algorithms] as (typeof ASYMMETRIC_ALGORITHMS)[number][]),
    maxLifetimeSeconds: z.number().int().min(10).max(3_600).default(DEFAULT_CLIENT_ASSERTION_POLICY.maxLifetimeSeconds),
    clockSkewSeconds: z.number().int().min(0).max(300).default(DEFAULT_CLIENT_ASSERTION_POLICY.clockSkewSeconds),
  })
  .optional();

export const serviceAccountIssuerSchema = z
  .strictObject({
    issuer: z.string().min(1),
    /** Default: the gatehouse issuer. */
    audience: z.string().min(1).optional(),
    jwks: jwkSet.optional(),
    jwksUri: httpsUrl.optional(),
  })
  .refine((cluster) => (cluster.jwks === undefined) !== (cluster.jwksUri === undefined), "give exactly one of jwks and jwksUri");

/** Limits of fetching what a client names (jwks_uri) and clusters' key sets. */
export interface FetchConfig {
  timeoutMs: number;
  maxBytes: number;
  /** Cache lifetime bounds, whatever the response's Cache-Control says. */
  minCacheSeconds: number;
  maxCacheSeconds: number;
  /** A refetch on an unknown kid happens at most this often per URL. */
  refetchCooldownSeconds: number;
  /** Development only: hosts whose private or loopback addresses may be fetched. */
  allowPrivateHosts: readonly string[];
  /** PEM certificates trusted besides the system's (a development CA). */
  trustedCa: string | undefined;
}

export const FETCH_DEFAULTS: Omit<FetchConfig, "trustedCa"> = {
  timeoutMs: 3_000,
  maxBytes: 64 * 1024,
  minCacheSeconds: 60,
  maxCacheSeconds: 86_400,
  refetchCooldownSeconds: 10,
  allowPrivateHosts: [],
};

export const fetchSchema = z
  .strictObject({
    timeoutMs: z.number().int().min(100).max(30_000).default(FETCH_DEFAULTS.timeoutMs),
    maxBytes: z.number().int().min(1_024).max(1_048_576).default(FETCH_DEFAULTS.maxBytes),
    minCacheSeconds: z.number().int().min(0).max(86_400).default(FETCH_DEFAULTS.minCacheSeconds),
    maxCacheSeconds: z.number().int().min(1).max(7 * 86_400).default(FETCH_DEFAULTS.maxCacheSeconds),
    refetchCooldownSeconds: z.number().int().min(0).max(3_600).default(FETCH_DEFAULTS.refetchCooldownSeconds),
    allowPrivateHosts: z.array(z.string().min(1)).default([]),
    trustedCa: secretReference.optional(),
  })
  .optional();

type ServiceSection = z.infer<typeof serviceClientSchema>;

/**
 * The client's service policy and the problems with it, at `at` (a client's
 * path in the file). `grantTypes` and `type` are the client's.
 */
export function buildServiceClient(
  service: ServiceSection | undefined,
  client: { type: string; grantTypes: readonly string[]; scopes: readonly string[] },
  context: { at: string; issuers: ReadonlySet<string>; defaultSubjectAudience: string },
  problems: string[],
): ServiceClientPolicy | undefined {
  const { at } = context;
  if (client.grantTypes.includes("client_credentials") && client.type !== "confidential") {
    problems.push(`${at}.grantTypes: client_credentials is for confidential clients only (RFC 6749 §4.4)`);
  }
  const exchanges = client.grantTypes.includes("urn:ietf:params:oauth:grant-type:token-exchange");
  if (exchanges && service?.tokenExchange === undefined) problems.push(`${at}.service.tokenExchange: the token exchange grant needs a policy (audiences, scopes)`);
  if (service === undefined) return undefined;
  if (service.tokenExchange !== undefined && !exchanges) {
    problems.push(`${at}.service.tokenExchange: add urn:ietf:params:oauth:grant-type:token-exchange to grantTypes, or remove this policy`);
  }
  service.tokenExchange?.scopes.forEach((scope, j) => {
    if (!client.scopes.includes(scope)) problems.push(`${at}.service.tokenExchange.scopes[${j}]: ${JSON.stringify(scope)} is not in this client's scopes`);
  });
  if (service.serviceAccount !== undefined && !context.issuers.has(service.serviceAccount.issuer)) {
    problems.push(`${at}.service.serviceAccount.issuer: ${JSON.stringify(service.serviceAccount.issuer)} is not under serviceAccountIssuers`);
  }
  if ((service.jwks !== undefined || service.jwksUri !== undefined || service.serviceAccount !== undefined) && client.type !== "confidential") {
    problems.push(`${at}.service: keys and service accounts authenticate confidential clients only`);
  }
  if (service.defaultAudience !== undefined && service.audiences.length > 0 && !service.audiences.includes(service.defaultAudience)) {
    problems.push(`${at}.service.defaultAudience: must be one of audiences`);
  }
  return {
    jwks: service.jwks as ServiceClientPolicy["jwks"],
    jwksUri: service.jwksUri,
    serviceAccount: service.serviceAccount,
    audiences: service.audiences,
    defaultAudience: service.defaultAudience,
    accessTokenLifetime: service.accessTokenLifetime,
    tokenRateLimit: service.tokenRateLimit,
    tokenExchange:
      service.tokenExchange === undefined
        ? undefined
        : {
            audiences: service.tokenExchange.audiences,
            scopes: service.tokenExchange.scopes,
            subjectAudiences: service.tokenExchange.subjectAudiences ?? [context.defaultSubjectAudience],
            impersonate: service.tokenExchange.impersonate,
          },
  };
}

/** True when the service section lets a confidential client authenticate without a secret. */
export function authenticatesWithoutSecret(service: ServiceSection | undefined): boolean {
  return service !== undefined && (service.jwks !== undefined || service.jwksUri !== undefined || service.serviceAccount !== undefined);
}

export function buildServiceAccountIssuers(
  issuers: ReadonlyArray<z.infer<typeof serviceAccountIssuerSchema> | undefined>,
  defaultAudience: string,
): ServiceAccountIssuer[] {
  return issuers.flatMap((cluster) =>
    cluster === undefined
      ? []
      : [{ issuer: cluster.issuer, audience: cluster.audience ?? defaultAudience, jwks: cluster.jwks as ServiceAccountIssuer["jwks"], jwksUri: cluster.jwksUri }],
  );
}

export function buildClientAssertionPolicy(section: z.infer<typeof clientAssertionsSchema>): ClientAssertionPolicy {
  return section === undefined ? DEFAULT_CLIENT_ASSERTION_POLICY : section;
}
