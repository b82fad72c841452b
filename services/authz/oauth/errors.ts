/**
 * The one domain error of the authz service. Handlers throw it; the error
 * interceptor maps it to a ConnectError exactly once (interceptors/errors.ts).
 *
 * `code` is the RFC's error code verbatim (RFC 6749 §4.1.2.1, §5.2; RFC 6750
 * §3.1; RFC 7009 §2.2.1), plus gatehouse's own codes for the login page, which
 * no RFC defines.
 */
export type OAuthErrorCode =
  // RFC 6749 §4.1.2.1 and §5.2
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "server_error"
  | "temporarily_unavailable"
  // RFC 7009 §2.2.1
  | "unsupported_token_type"
  // RFC 6750 §3.1 (UserInfo, OpenID Connect Core §5.3.3)
  | "invalid_token"
  | "insufficient_scope"
  // OpenID Connect Core 1.0 §3.1.2.6
  | "interaction_required"
  | "login_required"
  | "consent_required"
  | "request_not_supported"
  | "request_uri_not_supported"
  // RFC 7591 §3.2.2: a registration's redirect URIs or other metadata are refused
  | "invalid_redirect_uri"
  | "invalid_client_metadata"
  // RFC 8707 §2 and RFC 8693 §2.2.2: the requested resource or audience is not one the server issues tokens for
  | "invalid_target"
  // gatehouse: the gateway's service credential is missing or wrong
  | "unauthenticated_caller"
  // gatehouse: the tenant's registration policy is off (RFC 7591 endpoint absent: 404)
  | "registration_not_supported"
  // gatehouse: a call named a tenant that is not configured (issue 11)
  | "unknown_tenant"
  // gatehouse: login page and rate limits
  | "invalid_credentials"
  | "too_many_attempts"
  // gatehouse (issue 12): the password was right, but the account is disabled
  | "account_disabled";

export interface OAuthErrorOptions {
  /**
   * Where to send the user agent with this error (RFC 6749 §4.1.2.1). Set
   * only once client and redirect URI are verified: an error before that must
   * never redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11, open redirector).
   */
  redirectUrl?: string;
  /** Seconds until a retry may succeed (rate limits). */
  retryAfter?: number;
  /** Internal cause: logged, never sent. */
  cause?: unknown;
}

export class OAuthError extends Error {
  override readonly name = "OAuthError";
  readonly redirectUrl: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(
    readonly code: OAuthErrorCode,
    /** Human-readable, safe to show to the client (RFC 6749 §5.2 error_description). */
    readonly description: string,
    options: OAuthErrorOptions = {},
  ) {
    super(`${code}: ${description}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.redirectUrl = options.redirectUrl;
    this.retryAfter = options.retryAfter;
  }
}

/**
 * The store could not be reached or did not answer in time. Mapped to
 * Unavailable: a request that cannot be checked is refused, never passed.
 */
export class StoreUnavailableError extends OAuthError {
  constructor(cause: unknown) {
    super("temporarily_unavailable", "the authorization server's store is unavailable", { cause });
  }
}
