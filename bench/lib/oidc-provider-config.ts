import type { Adapter } from "oidc-provider";

/** What the peer's configuration is made of; the same values as gatehouse's bench configuration. */
export interface OidcProviderBenchOptions {
  readonly clientSecret: string;
  readonly redirectUri: string;
  /** A JWK set with the private signing key (the bench's ES256 key). */
  readonly signingKeys: { keys: unknown[] };
  readonly codeLifetimeSeconds: number;
  readonly cookieKey: string;
}

/**
 * node-oidc-provider 9 configured to do what gatehouse does in bench:peers,
 * and nothing on top: one confidential client `web` (client_secret_basic),
 * the authorization code grant with PKCE S256 required, refresh tokens issued
 * to a client allowed the refresh_token grant and rotated on every use, and
 * RFC 7662 introspection of a client's own tokens. Lifetimes as gatehouse's
 * defaults (access token 600 s, refresh token 14 days). Access tokens are the
 * provider's default, opaque and stored (gatehouse's are RFC 9068 JWTs).
 * Codes do not expire with a login session (gatehouse's do not either), so
 * the code exchange does not read a Session.
 */
export function createOidcProviderConfiguration(options: OidcProviderBenchOptions, adapter: new (name: string) => Adapter): Record<string, unknown> {
  return {
    adapter,
    clients: [
      {
        client_id: "web",
        client_secret: options.clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
        id_token_signed_response_alg: "ES256",
      },
    ],
    jwks: options.signingKeys,
    cookies: { keys: [options.cookieKey] },
    scopes: ["openid", "offline_access", "read"],
    features: {
      devInteractions: { enabled: false },
      // RFC 7662 §4: a client sees its own tokens only (gatehouse: unless introspectAnyToken).
      introspection: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      revocation: { enabled: false },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed("refresh_token"),
    expiresWithSession: async () => false,
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 600,
      AuthorizationCode: options.codeLifetimeSeconds,
      RefreshToken: 14 * 86_400,
      Grant: 90 * 86_400,
      IdToken: 600,
      ClientCredentials: 600,
      Interaction: 600,
      Session: 8 * 3_600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
  };
}
