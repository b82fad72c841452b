import { clientFromMetadata, parseClientMetadata, type ClientMetadata } from "./client-metadata.js";
import { isMetadataDocumentClientId } from "./client-metadata-document.js";
import type { OAuthContext } from "./context.js";
import type { DirectorySource } from "./directory.js";
import { OAuthError } from "./errors.js";
import { ID_BYTES, SECRET_BYTES } from "./issue-tokens.js";
import type { Client, RegistrationPolicy } from "./model.js";
import { constantTimeEqual, hashSecret } from "./secrets.js";
import type { StoredClient } from "./registry.js";

/** What registration keeps beside the client (RFC 7591 §3.2.1, RFC 7592 §3). */
export interface RegistrationRecord {
  /** The registered metadata (RFC 7591 §2), as validated (oauth/client-metadata.ts). */
  metadata: ClientMetadata;
  /** SHA-256 (base64url) of the RFC 7592 registration access token. */
  registrationAccessTokenHash: string;
  /** RFC 7591 §3.2.1 client_id_issued_at, seconds since the epoch. */
  issuedAt: number;
  /** Last authorization or token request, ms since the epoch, written at most once per touch interval. */
  lastUsedAt: number;
}

/**
 * A dynamically registered client as the tenant's registry (oauth/registry.ts)
 * stores it: the core's client, `source: "registration"`, and the record.
 */
export type RegisteredClient = StoredClient & { registration: RegistrationRecord };

/** A registration request (RFC 7591 §3.1) as the gateway passes it on. */
export interface RegistrationRequest {
  /** The parsed JSON body. */
  metadata: unknown;
  /** The bearer token of the request (RFC 7591 §3: the initial access token); "" when none. */
  bearerToken: string;
  /** The address the request came from (mode `open` counts registrations per address). */
  clientAddress: string;
}

/**
 * What RFC 7591 §3.2.1 and RFC 7592 §3 answer: the registered metadata, the
 * client's id and, once, its secrets. `registrationAccessToken` is the one
 * the client holds (issued now, or presented with this request: only its
 * hash is stored). The gateway adds `registration_client_uri`.
 */
export interface ClientInformation {
  clientId: string;
  metadata: ClientMetadata;
  /** Seconds since the epoch. */
  clientIdIssuedAt: number;
  /** Only when issued by this request (RFC 7591 §3.2.1: shown once). */
  clientSecret?: string | undefined;
  /** True for a confidential client: client_secret_expires_at (0, never) is sent. */
  confidential: boolean;
  registrationAccessToken: string;
}

/** Fields the server assigns, which an RFC 7592 §2.2 update must not carry. */
const SERVER_FIELDS = ["registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at"] as const;

/** The policy of a tenant without a `registration` section: off. */
export const REGISTRATION_OFF: RegistrationPolicy = Object.freeze({
  mode: "off",
  initialAccessTokenHashes: [],
  rateLimit: { max: 10, windowSeconds: 3_600 },
  allowConfidential: false,
  scopes: [],
  unusedClientTtlSeconds: 30 * 86_400,
  touchIntervalSeconds: 3_600,
  clientIdMetadataDocuments: false,
});

/**
 * RFC 7591 dynamic client registration and RFC 7592 management, by the
 * tenant's policy (model.ts RegistrationPolicy). Registration access tokens
 * and client secrets are ≥ 256-bit random values stored as SHA-256 digests
 * and compared in constant time; a registered client is forgotten when it
 * has not been used for `unusedClientTtlSeconds`.
 */
export function createRegistration(ctx: RegistrationContext) {
  const policy = () => ctx.policy.registration ?? REGISTRATION_OFF;
  const ttlMs = () => policy().unusedClientTtlSeconds * 1000;

  const clients = () => ctx.store.registry.clients;
  const expired = (record: RegisteredClient, now: number) => now - record.registration.lastUsedAt >= ttlMs();
  /** The registered client, unless it is gone or unused for longer than the policy allows (judged by the core's clock). */
  const live = async (clientId: string): Promise<RegisteredClient | undefined> => {
    if (clientId === "") return undefined;
    const stored = await clients().get(clientId);
    if (stored === undefined || stored.source !== "registration" || !("registration" in stored)) return undefined;
    const record = stored as RegisteredClient;
    return expired(record, ctx.clock()) ? undefined : record;
  };
  /** The registry entry of a client registered with `metadata` (plain JSON, as the registry keeps clients). */
  const entryOf = (clientId: string, metadata: ClientMetadata, secretHash: string | undefined, registration: RegistrationRecord, createdAt: number): RegisteredClient => {
    const { grantTypes, responseTypes, ...client } = clientFromMetadata(clientId, metadata, "registration", secretHash);
    return Object.assign(client, {
      grantTypes: [...grantTypes],
      responseTypes: [...responseTypes],
      createdAt,
      updatedAt: ctx.clock(),
      source: "registration" as const,
      createdBy: "registration",
      revision: 1,
      registration,
    });
  };

  /**
   * RFC 7592 §2: the registration access token authenticates every
   * management request; a wrong token and an unknown client are the same
   * 401 invalid_token (§2.1: "the server MUST respond with HTTP 401
   * Unauthorized"), so the endpoint does not tell which ids exist.
   */
  const authorizeManagement = async (clientId: string, token: string): Promise<RegisteredClient> => {
    if (policy().mode === "off") throw registrationOff();
    const record = await live(clientId);
    const presented = hashSecret(token);
    const matches = constantTimeEqual(presented, record?.registration.registrationAccessTokenHash ?? hashSecret(""));
    if (record === undefined || token === "" || !matches) throw new OAuthError("invalid_token", "the registration access token is not valid for this client");
    return record;
  };

  const information = (record: RegisteredClient, registrationAccessToken: string, clientSecret?: string): ClientInformation => ({
    clientId: record.id,
    metadata: record.registration.metadata,
    clientIdIssuedAt: record.registration.issuedAt,
    confidential: record.secretHashes.length > 0,
    registrationAccessToken,
    ...(clientSecret === undefined ? {} : { clientSecret }),
  });

  return {
    /** True when the tenant serves a registration endpoint (RFC 8414 §2 registration_endpoint). */
    enabled: () => policy().mode !== "off",

    /** RFC 7591 §3.1 / §3.2: registers a client, or throws the §3.2.2 error. */
    async register(request: RegistrationRequest): Promise<ClientInformation> {
      const current = policy();
      if (current.mode === "off") throw registrationOff();
      if (current.mode === "initial-access-token") {
        // RFC 7591 §3: "the initial access token ... the server SHOULD respond with an error as described in RFC 6750".
        const presented = hashSecret(request.bearerToken);
        let matched = false;
        for (const expected of current.initialAccessTokenHashes) matched = constantTimeEqual(presented, expected) || matched;
        if (request.bearerToken === "" || !matched) throw new OAuthError("invalid_token", "a valid initial access token is required to register");
      } else {
        // Open registration: every attempt counts against the address, in the store, so the limit holds across replicas.
        const { count, resetInMs } = await ctx.store.attempts.hit(`registration:address:${request.clientAddress}`, current.rateLimit.windowSeconds * 1000);
        if (count > current.rateLimit.max) {
          throw new OAuthError("too_many_attempts", "too many registrations from this address; try again later", { retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)) });
        }
      }
      if (typeof request.metadata === "object" && request.metadata !== null && "client_id" in request.metadata) {
        throw new OAuthError("invalid_client_metadata", "client_id is assigned by the server");
      }
      const metadata = parseClientMetadata(request.metadata, current, "registration");
      const clientSecret = metadata.token_endpoint_auth_method === "none" ? undefined : ctx.random(SECRET_BYTES);
      const registrationAccessToken = ctx.random(SECRET_BYTES);
      const now = ctx.clock();
      const clientId = ctx.random(ID_BYTES);
      const registration: RegistrationRecord = { metadata, registrationAccessTokenHash: hashSecret(registrationAccessToken), issuedAt: Math.floor(now / 1000), lastUsedAt: now };
      const record = entryOf(clientId, metadata, clientSecret === undefined ? undefined : hashSecret(clientSecret), registration, now);
      if (!(await clients().create(clientId, record))) throw new OAuthError("server_error", "a generated client id collided");
      return information(record, registrationAccessToken, clientSecret);
    },

    /** RFC 7592 §2.1: the client's current registration. */
    async read(clientId: string, registrationAccessToken: string): Promise<ClientInformation> {
      return information(await authorizeManagement(clientId, registrationAccessToken), registrationAccessToken);
    },

    /**
     * RFC 7592 §2.2: replaces the metadata as a whole ("fields with omitted
     * values ... MUST be treated as null or empty values by the server"). A
     * client that becomes confidential gets a secret now, shown once.
     */
    async update(clientId: string, registrationAccessToken: string, body: unknown): Promise<ClientInformation> {
      const record = await authorizeManagement(clientId, registrationAccessToken);
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new OAuthError("invalid_client_metadata", "the client metadata must be a JSON object");
      const fields = body as Record<string, unknown>;
      // §2.2: "The client MUST include its client_id field in the request, and it MUST be the same as its currently issued client identifier."
      if (fields.client_id !== clientId) throw new OAuthError("invalid_client_metadata", "client_id must be this client's id");
      for (const field of SERVER_FIELDS) {
        // §2.2: "The client MUST NOT include the registration_access_token, registration_client_uri, client_secret_expires_at, or client_id_issued_at fields".
        if (field in fields) throw new OAuthError("invalid_client_metadata", `${field} is the server's and must not be sent`);
      }
      if (fields.client_secret !== undefined) {
        // §2.2: "If included, this MUST match the client_secret value the client currently holds."
        const matches = typeof fields.client_secret === "string" && record.secretHashes[0] !== undefined && constantTimeEqual(hashSecret(fields.client_secret), record.secretHashes[0]);
        if (!matches) throw new OAuthError("invalid_client_metadata", "client_secret does not match the client's secret");
      }
      const metadata = parseClientMetadata(body, policy(), "registration");
      const currentHash = record.secretHashes[0];
      let secretHash = metadata.token_endpoint_auth_method === "none" ? undefined : currentHash;
      let clientSecret: string | undefined;
      if (metadata.token_endpoint_auth_method !== "none" && secretHash === undefined) {
        clientSecret = ctx.random(SECRET_BYTES);
        secretHash = hashSecret(clientSecret);
      }
      const updated = entryOf(record.id, metadata, secretHash, Object.assign({}, record.registration, { metadata }), record.createdAt);
      const result = await clients().replace(record.id, record.revision, updated);
      if (result === "missing") throw new OAuthError("invalid_token", "the registration access token is not valid for this client");
      if (result === "conflict") throw new OAuthError("temporarily_unavailable", "the registration changed while it was updated; try again", { retryAfter: 1 });
      return information(updated, registrationAccessToken, clientSecret);
    },

    /** RFC 7592 §2.3: deprovisions the client; its refresh tokens stop working with it (client authentication fails). */
    async remove(clientId: string, registrationAccessToken: string): Promise<void> {
      await authorizeManagement(clientId, registrationAccessToken);
      await clients().delete(clientId);
    },

    /**
     * The registered client `clientId` as the protocol core uses it, or
     * undefined (never registered, deleted, or unused for too long). A use is
     * recorded at most once per touch interval, so the lookup on the hot path
     * is one read most of the time.
     */
    async findClient(clientId: string): Promise<Client | undefined> {
      if (policy().mode === "off") return undefined;
      const record = await live(clientId);
      if (record === undefined) return undefined;
      const now = ctx.clock();
      if (now - record.registration.lastUsedAt >= policy().touchIntervalSeconds * 1000) {
        // A concurrent touch or update wins: either records a use as recent as this one.
        const touched: RegisteredClient = Object.assign({}, record, { registration: Object.assign({}, record.registration, { lastUsedAt: now }) });
        await clients().replace(record.id, record.revision, touched);
      }
      return clientFromMetadata(record.id, record.registration.metadata, "registration", record.secretHashes[0]);
    },

    /**
     * Deletes registered clients unused for longer than the policy allows,
     * looking at up to `limit` registry entries from after `after`; returns
     * how many were deleted and where to go on (undefined: the end). Every
     * replica may sweep: deleting twice is harmless.
     */
    async sweepUnused(after: string | undefined, limit: number): Promise<{ deleted: number; next: string | undefined }> {
      const page = await clients().list(after, limit);
      const now = ctx.clock();
      let deleted = 0;
      for (const { id, entry } of page) {
        if (entry.source !== "registration" || !("registration" in entry)) continue;
        if (expired(entry as RegisteredClient, now) && (await clients().delete(id))) deleted++;
      }
      return { deleted, next: page.length < limit ? undefined : page[page.length - 1]!.id };
    },
  };
}

export type Registration = ReturnType<typeof createRegistration>;

/** What registration needs of the context: no directory (it is one of the directory's sources). */
export type RegistrationContext = Pick<OAuthContext, "policy" | "store" | "clock" | "random">;

/** Dynamically registered clients as a source of the tenant's directory (oauth/directory.ts), after the configuration's. */
export function registeredClientSource(ctx: RegistrationContext): DirectorySource {
  const registration = createRegistration(ctx);
  return { findClient: (clientId) => (isMetadataDocumentClientId(clientId) ? undefined : registration.findClient(clientId)) };
}

/** Registration is off for this tenant: the endpoint does not exist (the gateway answers 404). */
function registrationOff(): OAuthError {
  return new OAuthError("registration_not_supported", "this authorization server does not accept client registrations");
}
