import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import type { Client, ClientAssertionPolicy, ServiceAccountIssuer } from "./model.js";
import { RemoteJwksError } from "./remote-jwks.js";

/** RFC 7523 §2.2: the client assertion type of a JWT. */
export const JWT_BEARER_CLIENT_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/**
 * Asymmetric JWS algorithms only (RFC 7518 §3.1): `none` would accept any
 * assertion, and an HMAC algorithm would make the client's *public* key the
 * shared secret (RFC 8725 §2.1, §3.1: "each key MUST be used with exactly one
 * algorithm").
 */
export const ASYMMETRIC_ALGORITHMS = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"] as const;

export const DEFAULT_CLIENT_ASSERTION_POLICY: ClientAssertionPolicy = {
  algorithms: ASYMMETRIC_ALGORITHMS,
  // oauth4webapi signs assertions valid for 60 s; a few minutes leaves room for clock differences and retries.
  maxLifetimeSeconds: 300,
  clockSkewSeconds: 30,
};

/** A Kubernetes service account subject (the token's `sub`). */
const SERVICE_ACCOUNT_SUBJECT = /^system:serviceaccount:[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** How the client presented an assertion (RFC 7521 §4.2). */
export interface AssertionCredentials {
  clientId: string;
  clientAssertionType: string;
  clientAssertion: string;
}

/**
 * Authenticates a client by a JWT it signed (private_key_jwt: RFC 7523 §2.2
 * and §3, OIDC Core §9), or by the projected token of a Kubernetes service
 * account mapped to it. Every failure about the assertion is invalid_client
 * (RFC 7521 §4.2.1) with a description that says what was wrong, so that the
 * client's developer can fix it; the caller counts it toward the
 * client-authentication failure limits.
 *
 * `endpointUrl` is the URL the request was sent to (reported by the gateway),
 * an audience RFC 7523 §3 item 3 allows besides the issuer.
 */
export async function authenticateClientAssertion(ctx: OAuthContext, credentials: AssertionCredentials, endpointUrl: string | undefined): Promise<Client> {
  if (credentials.clientAssertionType === "") throw new OAuthError("invalid_request", "client_assertion_type is required with client_assertion (RFC 7521 §4.2)");
  if (credentials.clientAssertion === "") throw new OAuthError("invalid_request", "client_assertion is required with client_assertion_type (RFC 7521 §4.2)");
  if (credentials.clientAssertionType !== JWT_BEARER_CLIENT_ASSERTION) throw refused(`client_assertion_type must be ${JWT_BEARER_CLIENT_ASSERTION}`);

  let header;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(credentials.clientAssertion);
    unverified = decodeJwt(credentials.clientAssertion);
  } catch {
    throw refused("the assertion is not a signed JWT");
  }
  const policy = ctx.policy.clientAssertions ?? DEFAULT_CLIENT_ASSERTION_POLICY;
  if (typeof header.alg !== "string" || !policy.algorithms.includes(header.alg)) {
    throw refused(`alg ${JSON.stringify(header.alg ?? null)} is not accepted; use one of ${policy.algorithms.join(", ")}`);
  }

  const cluster = ctx.policy.serviceAccountIssuers?.find((candidate) => candidate.issuer === unverified.iss);
  if (cluster !== undefined) return authenticateServiceAccount(ctx, cluster, credentials, policy);

  // RFC 7523 §3 items 1 and 2.B: for client authentication, iss and sub are both the client_id.
  const clientId = typeof unverified.sub === "string" ? unverified.sub : "";
  if (credentials.clientId !== "" && credentials.clientId !== clientId) throw refused("sub is not the client_id of the request");
  const client = await ctx.directory.findClient(clientId);
  const service = client?.service;
  if (client === undefined || client.type !== "confidential" || service === undefined || (service.jwks === undefined && service.jwksUri === undefined)) {
    throw refused("no client with registered keys has this client_id");
  }
  const now = ctx.clock();
  const audience = [ctx.policy.issuer, ...(endpointUrl === undefined || endpointUrl === "" ? [] : [endpointUrl])];
  const payload = await verifyAssertion(ctx, { jwks: service.jwks, jwksUri: service.jwksUri }, credentials.clientAssertion, {
    algorithms: [...policy.algorithms],
    issuer: clientId,
    subject: clientId,
    // RFC 7523 §3 item 3: "The authorization server MUST reject any JWT that does not contain its own identity as the intended audience."
    audience,
    currentDate: new Date(now),
    clockTolerance: policy.clockSkewSeconds,
    // RFC 7523 §3 item 4 (exp); OIDC Core §9 makes jti REQUIRED.
    requiredClaims: ["exp", "jti"],
  });
  // RFC 7523 §3 item 4: the server "MAY reject JWTs with an "exp" claim value that is unreasonably far in the future".
  const nowSeconds = now / 1000;
  if (payload.exp! - nowSeconds > policy.maxLifetimeSeconds + policy.clockSkewSeconds) {
    throw refused(`exp is more than ${policy.maxLifetimeSeconds} s away; sign short-lived assertions`);
  }
  if (typeof payload.iat === "number" && nowSeconds - payload.iat > policy.maxLifetimeSeconds + policy.clockSkewSeconds) {
    throw refused(`iat is more than ${policy.maxLifetimeSeconds} s ago`);
  }
  if (typeof payload.jti !== "string" || payload.jti === "" || payload.jti.length > 256) throw refused("jti must be a non-empty string");
  // RFC 7523 §3 item 7, OIDC Core §9: a jti is used once, remembered until the assertion expires.
  if (!(await ctx.store.clientAssertions.use(client.id, payload.jti, payload.exp! * 1000 + policy.clockSkewSeconds * 1000))) {
    throw refused("this assertion's jti was already used (replay)");
  }
  return client;
}

/**
 * A projected service account token (Kubernetes TokenRequest API) from a
 * configured cluster, verified against that cluster's keys, for the client
 * registered for its `sub` (`system:serviceaccount:{namespace}:{name}`).
 * The kubelet hands the same token to the workload until it rotates it (at
 * 80 % of its life), so its `jti` cannot be single use: what protects it is
 * its audience (only gatehouse accepts it), its short life and the pod-bound
 * claims Kubernetes checks itself.
 */
async function authenticateServiceAccount(
  ctx: OAuthContext,
  cluster: ServiceAccountIssuer,
  credentials: AssertionCredentials,
  policy: ClientAssertionPolicy,
): Promise<Client> {
  const payload = await verifyAssertion(ctx, cluster, credentials.clientAssertion, {
    algorithms: [...policy.algorithms],
    issuer: cluster.issuer,
    audience: cluster.audience,
    currentDate: new Date(ctx.clock()),
    clockTolerance: policy.clockSkewSeconds,
    requiredClaims: ["exp", "sub"],
  });
  const subject = payload.sub!;
  if (!SERVICE_ACCOUNT_SUBJECT.test(subject)) throw refused("sub is not a service account (system:serviceaccount:{namespace}:{name})");
  const client = serviceAccountClients(ctx).get(`${cluster.issuer}\n${subject}`);
  if (client === undefined) throw refused("no client is registered for this service account");
  if (credentials.clientId !== "" && credentials.clientId !== client.id) throw refused("the service account belongs to another client_id");
  return client;
}

const clientsByServiceAccount = new WeakMap<object, Map<string, Client>>();
/** Clients by (cluster issuer, service account), built once per configuration. */
function serviceAccountClients(ctx: OAuthContext): Map<string, Client> {
  let index = clientsByServiceAccount.get(ctx.policy.clients);
  if (index === undefined) {
    index = new Map();
    for (const client of ctx.policy.clients.values()) {
      const account = client.service?.serviceAccount;
      if (account !== undefined) index.set(`${account.issuer}\n${account.subject}`, client);
    }
    clientsByServiceAccount.set(ctx.policy.clients, index);
  }
  return index;
}

type VerifyOptions = NonNullable<Parameters<typeof jwtVerify>[2]>;

/**
 * Verifies a JWT against inline keys or a remote key set. A `kid` the cached
 * remote set lacks fetches the set once more (the client rotated its keys).
 */
async function verifyAssertion(
  ctx: OAuthContext,
  source: { jwks?: { keys: readonly JWK[] } | undefined; jwksUri?: string | undefined },
  token: string,
  options: VerifyOptions,
): Promise<JWTPayload> {
  const verify = async (refresh: boolean) => {
    let set: { keys: readonly JWK[] };
    if (source.jwks !== undefined) set = source.jwks;
    else if (source.jwksUri !== undefined && ctx.remoteJwks !== undefined) set = await ctx.remoteJwks.get(source.jwksUri, { refresh });
    else throw refused("the client's keys cannot be fetched here");
    return (await jwtVerify(token, keySetOf(set), options)).payload;
  };
  try {
    try {
      return await verify(false);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey && source.jwks === undefined) return await verify(true);
      throw error;
    }
  } catch (error) {
    throw describeFailure(error);
  }
}

const keySets = new WeakMap<object, JWTVerifyGetKey>();
/**
 * jose's local key set over the public, asymmetric keys of `set` (a secret
 * `oct` key in a published set is never a verification key here), kept per
 * set object so that each key is imported once.
 */
function keySetOf(set: { keys: readonly JWK[] }): JWTVerifyGetKey {
  let keySet = keySets.get(set);
  if (keySet === undefined) {
    keySet = createLocalJWKSet({ keys: set.keys.filter((key) => key.kty !== "oct" && key.d === undefined) as JWK[] });
    keySets.set(set, keySet);
  }
  return keySet;
}

/** jose's failure, in words a client's developer can act on (RFC 7521 §4.2.1 invalid_client). */
function describeFailure(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  if (error instanceof RemoteJwksError) return refused(`the client's key set could not be had: ${error.message}`);
  if (error instanceof errors.JWTExpired) return refused("the assertion has expired (exp)");
  if (error instanceof errors.JWTClaimValidationFailed) {
    const why: Record<string, string> = {
      aud: "aud is not this authorization server (the issuer or the endpoint URL)",
      iss: "iss is not the expected issuer",
      sub: "sub is not the client",
      nbf: "the assertion is not yet valid (nbf)",
      iat: "iat is in the future",
      exp: "exp is missing or malformed",
      jti: "jti is missing",
    };
    return refused(why[error.claim] ?? `claim ${error.claim} is invalid`);
  }
  if (error instanceof errors.JWKSNoMatchingKey) return refused("no registered key matches the assertion's kid and alg");
  if (error instanceof errors.JWKSMultipleMatchingKeys) return refused("several registered keys match; give the assertion a kid");
  if (error instanceof errors.JOSEAlgNotAllowed) return refused("the assertion's alg is not accepted");
  if (error instanceof errors.JWSSignatureVerificationFailed) return refused("the signature does not verify");
  return refused("the assertion is malformed");
}

function refused(why: string): OAuthError {
  return new OAuthError("invalid_client", `client assertion refused: ${why}`);
}
