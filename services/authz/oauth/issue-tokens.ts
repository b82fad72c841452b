import type { OAuthContext } from "./context.js";
import { formatScope } from "./scope.js";
import { hashSecret } from "./secrets.js";
import type { ServerPolicy } from "./model.js";
import { buildAccessTokenClaims, formatRefreshToken, type Actor } from "./tokens.js";

/** Bits of randomness: RFC 6749 §10.10 asks ≥ 128 for codes and tokens; gatehouse uses 256. */
export const SECRET_BYTES = 32;
/** Grant ids and jtis need uniqueness, not secrecy: 128 bits. */
export const ID_BYTES = 16;

/** A successful access token response (RFC 6749 §5.1). */
export interface TokenSet {
  accessToken: string;
  tokenType: "Bearer";
  /** Seconds. */
  expiresIn: number;
  /** Empty when none is issued. */
  refreshToken: string;
  scope: string;
  /** RFC 8693 §2.2.1 issued_token_type; absent outside token exchange. */
  issuedTokenType?: string;
}

export interface Grant {
  grantId: string;
  clientId: string;
  subject: string;
  scopes: readonly string[];
  authTime: number;
}

/** What a grant other than the code grant sets differently on its access token. */
export interface AccessTokenOptions {
  /** RFC 9068 §2.2 `aud`; default: the server's audience. */
  audience?: string | readonly string[];
  /** Default: lifetimes.accessToken. */
  ttlSeconds?: number;
  /** RFC 8693 §4.1. */
  act?: Actor | undefined;
}

/** Signs an access token of a grant; `scopes` may be narrower than the grant's (RFC 6749 §6). */
export async function issueAccessToken(ctx: OAuthContext, grant: Grant, scopes: readonly string[], options: AccessTokenOptions = {}): Promise<TokenSet> {
  const { policy } = ctx;
  const ttlSeconds = options.ttlSeconds ?? policy.lifetimes.accessToken;
  const accessToken = await ctx.keys.sign(
    buildAccessTokenClaims({
      issuer: policy.issuer,
      audience: options.audience ?? policy.audience,
      subject: grant.subject,
      clientId: grant.clientId,
      scopes,
      jti: ctx.random(ID_BYTES),
      grantId: grant.grantId,
      authTime: grant.authTime,
      now: ctx.clock(),
      ttlSeconds,
      act: options.act,
    }),
  );
  return { accessToken, tokenType: "Bearer", expiresIn: ttlSeconds, refreshToken: "", scope: formatScope(scopes) };
}

/**
 * The longest an access token of this server can live: a revocation must be
 * remembered that long to kill every token of a grant (per-client lifetimes
 * of service clients included).
 */
export function longestAccessTokenLifetime(policy: ServerPolicy): number {
  let longest = policy.lifetimes.accessToken;
  for (const client of policy.clients.values()) longest = Math.max(longest, client.service?.accessTokenLifetime ?? 0);
  return longest;
}

/** A fresh refresh token of a grant, with its hash and expiry (never past the family's end). */
export function mintRefreshToken(ctx: OAuthContext, grantId: string, familyExpiresAt: number) {
  const refreshToken = formatRefreshToken(grantId, ctx.random(SECRET_BYTES));
  return {
    refreshToken,
    tokenHash: hashSecret(refreshToken),
    tokenExpiresAt: Math.min(ctx.clock() + ctx.policy.lifetimes.refreshToken * 1000, familyExpiresAt),
  };
}
