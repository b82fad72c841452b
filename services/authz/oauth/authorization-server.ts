import { createAttemptLimiter } from "./attempts.js";
import { authorize, decide, type AuthorizationRequest, type Decision } from "./authorize.js";
import { ASYMMETRIC_ALGORITHMS, authenticateClientAssertion } from "./client-assertion.js";
import { authenticateClient, parseBasicAuthorization, presentedClientId, type ClientCredentials } from "./client-auth.js";
import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import { exchangeCode, type CodeExchange } from "./grants/authorization-code.js";
import { clientCredentials, type ClientCredentialsGrant } from "./grants/client-credentials.js";
import { exchangeToken, type TokenExchangeRequest } from "./grants/token-exchange.js";
import { refresh, type RefreshGrant } from "./grants/refresh-token.js";
import { introspect } from "./introspect.js";
import { createLogin, sessionIdOf } from "./login.js";
import { openIdFacts } from "./openid-metadata.js";
import { userInfo } from "./userinfo.js";
import { endExpiredSessions, endSession, planLogout, type LogoutRequest } from "./end-session.js";
import { TOKEN_EXCHANGE_GRANT, type Client } from "./model.js";
import { revoke } from "./revoke.js";
import { createRegistration } from "./registration.js";
import { hashSecret } from "./secrets.js";
import { traced } from "./trace.js";
import {
  blockUser,
  endUserSession,
  findUserRights,
  listUserGrants,
  listUserSessions,
  revokeUserGrant,
  setUserGroups,
  unblockUser,
  userRightsChanged,
} from "./user-rights.js";

/** Who is calling on behalf of a client, and from where (for failure limits). */
export interface ClientCall {
  credentials: ClientCredentials;
  /** The address the request came from: the browser's or server's, as the gateway saw it, or the RPC peer. */
  clientAddress: string;
  /** The endpoint URL the request was sent to, as the gateway reports it: an accepted `aud` of client assertions (RFC 7523 §3). */
  endpointUrl?: string | undefined;
}

/**
 * The authorization server's operations, over one context. The RPC handlers
 * (rpc/) translate messages to and from these and add nothing of their own.
 */
export function createAuthorizationServer(ctx: OAuthContext) {
  const limiter = createAttemptLimiter(ctx);
  const registration = createRegistration(ctx);

  /**
   * Client authentication (oauth/client-auth.ts) with failures counted per
   * address: each failure is slowed down, and past the limit answered
   * too_many_attempts. Successes cost nothing extra: client secrets have
   * ≥ 256 bits, so a correct one is never a guess.
   */
  const authenticate = traced(ctx.trace, "oauth.client_authentication", async (call: ClientCall): Promise<Client> => {
    try {
      const { credentials } = call;
      const clientAssertionType = credentials.clientAssertionType ?? "";
      const clientAssertion = credentials.clientAssertion ?? "";
      if (clientAssertionType === "" && clientAssertion === "") {
        const clientId = presentedClientId(credentials);
        const client = clientId === "" ? undefined : await ctx.directory.findClient(clientId);
        return authenticateClient((id) => (id === clientId ? client : undefined), credentials);
      }
      // RFC 6749 §2.3: a client "MUST NOT use more than one authentication method in each request".
      if (credentials.clientSecret !== "" || parseBasicAuthorization(credentials.authorization) !== undefined) {
        throw new OAuthError("invalid_request", "client authenticated with more than one method");
      }
      return await authenticateClientAssertion(ctx, { clientId: credentials.clientId, clientAssertionType, clientAssertion }, call.endpointUrl);
    } catch (error) {
      if (error instanceof OAuthError && error.code === "invalid_client") {
        await limiter.fail([{ key: `client-auth:address:${call.clientAddress}`, max: ctx.policy.attempts.maxFailuresPerAddress }]);
      }
      throw error;
    }
  });
  const redeemCode = traced(ctx.trace, "oauth.code_redemption", (client: Client, exchange: CodeExchange) => exchangeCode(ctx, client, exchange));
  const rotateRefresh = traced(ctx.trace, "oauth.refresh", (client: Client, grant: RefreshGrant) => refresh(ctx, client, grant));
  const introspectToken = traced(ctx.trace, "oauth.introspection", (client: Client, token: string, hint: string) => introspect(ctx, client, token, hint));
  const issueClientToken = traced(ctx.trace, "oauth.client_credentials", (client: Client, grant: ClientCredentialsGrant) => clientCredentials(ctx, client, grant));
  const exchange = traced(ctx.trace, "oauth.token_exchange", (client: Client, request: TokenExchangeRequest) => exchangeToken(ctx, client, request));
  const revokeToken = traced(ctx.trace, "oauth.revocation", (client: Client, token: string, hint: string) => revoke(ctx, client, token, hint));

  return {
    /**
     * Introspection for the deployment's gateway in a named tenant (issue 11),
     * asked with the gateway's service credential and no client credentials:
     * the gateway guards routes of every tenant, and its own client is the
     * default tenant's. It may read any token of this tenant, as a client with
     * introspectAnyToken may; it sees nothing of another tenant (this server's
     * keys and store are this tenant's alone).
     */
    introspectForGateway: (token: string, tokenTypeHint: string) => introspectToken(GATEWAY_INTROSPECTOR, token, tokenTypeHint),
    authorize: (request: AuthorizationRequest) => authorize(ctx, request),
    decide: (decision: Decision) => decide(ctx, decision),
    exchangeCode: async (call: ClientCall, exchange: CodeExchange) => redeemCode(await authenticate(call), exchange),
    refresh: async (call: ClientCall, grant: RefreshGrant) => rotateRefresh(await authenticate(call), grant),
    clientCredentials: async (call: ClientCall, grant: ClientCredentialsGrant) => issueClientToken(await authenticate(call), grant),
    exchangeToken: async (call: ClientCall, request: TokenExchangeRequest) => exchange(await authenticate(call), request),
    introspect: async (call: ClientCall, token: string, tokenTypeHint: string) => introspectToken(await authenticate(call), token, tokenTypeHint),
    revoke: async (call: ClientCall, token: string, tokenTypeHint: string) => revokeToken(await authenticate(call), token, tokenTypeHint),

    login: createLogin(ctx, limiter),
    /** RFC 7591 / RFC 7592 (oauth/registration.ts). */
    registration,
    async getSession(sessionToken: string) {
      if (sessionToken === "") return undefined;
      const sessionHash = hashSecret(sessionToken);
      const session = await ctx.store.sessions.get(sessionHash);
      if (session === undefined) return undefined;
      // Issue 12: a blocked user's sessions are ended, and one that slipped past the block (opened while it was
      // being written) is no session either.
      if ((await findUserRights(ctx, session.subject))?.disabled === true) return undefined;
      return Object.assign({}, session, { sid: sessionIdOf(sessionHash) });
    },
    /** OpenID Connect Core §5.3 (oauth/userinfo.ts). */
    userInfo: traced(ctx.trace, "oidc.userinfo", (accessToken: string) => userInfo(ctx, accessToken)),
    /** Ends the session, with what OpenID Connect logout asks of it (oauth/end-session.ts). */
    logout: (sessionToken: string) => endSession(ctx, sessionToken),
    /** Back-Channel Logout for sessions that expired (run periodically, services/authz/app.ts). */
    endExpiredSessions: () => endExpiredSessions(ctx),
    /** RP-Initiated Logout 1.0 §2: what the end_session_endpoint should do. */
    planLogout: (request: LogoutRequest) => planLogout(ctx, request),

    jwks: () => ctx.keys.publicJwks,
    /** RFC 8414 §2 facts that do not depend on where the HTTP endpoints are. */
    metadata() {
      const clients = [...ctx.policy.clients.values()];
      return {
        issuer: ctx.policy.issuer,
        scopesSupported: [...ctx.policy.scopes.keys()],
        responseTypesSupported: clients.some((c) => c.responseTypes.has("token")) ? ["code", "token"] : ["code"],
        grantTypesSupported: [
          "authorization_code",
          "refresh_token",
          ...(clients.some((c) => c.responseTypes.has("token")) ? ["implicit"] : []),
          ...(clients.some((c) => c.grantTypes.has("client_credentials")) ? ["client_credentials"] : []),
          ...(clients.some((c) => c.grantTypes.has(TOKEN_EXCHANGE_GRANT)) ? [TOKEN_EXCHANGE_GRANT] : []),
        ],
        codeChallengeMethodsSupported: clients.some((c) => c.pkce.allowPlain) ? ["S256", "plain"] : ["S256"],
        ...openIdFacts(ctx),
        // RFC 8414 §2 (and the same for introspection and revocation): private_key_jwt is always accepted from a client with keys.
        tokenEndpointAuthMethodsSupported: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        tokenEndpointAuthSigningAlgValuesSupported: [...(ctx.policy.clientAssertions?.algorithms ?? ASYMMETRIC_ALGORITHMS)],
        // RFC 8414 §2 registration_endpoint (when the policy is not off) and the CIMD draft's client_id_metadata_document_supported.
        registrationSupported: registration.enabled(),
        clientIdMetadataDocumentSupported: ctx.policy.registration?.clientIdMetadataDocuments === true && ctx.metadataDocuments !== undefined,
      };
    },
    /**
     * Issue 12 (oauth/user-rights.ts): an administrator's operations on a
     * user's rights and state, in this tenant. The AdminService calls these;
     * they are not exposed to clients or the gateway.
     */
    users: {
      blockUser: (subject: string) => blockUser(ctx, subject),
      unblockUser: (subject: string) => unblockUser(ctx, subject),
      setUserGroups: (subject: string, groups: readonly string[] | undefined) => setUserGroups(ctx, subject, groups),
      userRightsChanged: (subject: string, before: readonly string[], after: readonly string[]) => userRightsChanged(ctx, subject, before, after),
      findUserRights: (subject: string) => findUserRights(ctx, subject),
      listSessions: (subject: string) => listUserSessions(ctx, subject),
      endSession: (subject: string, sid: string) => endUserSession(ctx, subject, sid),
      listGrants: (subject: string) => listUserGrants(ctx, subject),
      revokeGrant: (subject: string, grantId: string) => revokeUserGrant(ctx, subject, grantId),
    },
    subscribeToRevocations: ctx.store.revocationFeed.subscribe.bind(ctx.store.revocationFeed),
    /**
     * Who may watch revocations besides the gateway: a client that may
     * introspect any token (a resource server's guard). What it learns (token
     * and grant ids as they die) is less than Introspect already tells it.
     */
    async authorizeRevocationWatcher(call: ClientCall): Promise<void> {
      const client = await authenticate(call);
      if (!client.introspectAnyToken) throw new OAuthError("unauthorized_client", "this client may not watch revocations");
    },
    ping: () => ctx.store.ping(),
  };
}

export type AuthorizationServer = ReturnType<typeof createAuthorizationServer>;

/** The gateway as an introspecting party (introspectForGateway): no client of any tenant, no grants, no redirects. */
const GATEWAY_INTROSPECTOR: Client = Object.freeze<Client>({
  id: "",
  name: "gatehouse gateway",
  type: "confidential",
  secretHashes: [],
  redirectUris: [],
  scopes: [],
  defaultScopes: [],
  grantTypes: new Set(),
  responseTypes: new Set(),
  pkce: { required: true, allowPlain: false },
  refreshGraceSeconds: 0,
  firstParty: false,
  introspectAnyToken: true,
});
