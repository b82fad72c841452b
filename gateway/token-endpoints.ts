import type { CallOptions, Client } from "@connectrpc/connect";
import type { Actor, AuthorizationService, IntrospectResponse, TokenSet } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { GRANT_NAME, VSCHAR, type ParameterSyntax } from "./form-body.js";
import { CLIENT_ASSERTION_PARAMETERS, clientFields, requestServiceGrant, SERVICE_GRANT_PARAMETERS } from "./service-grants.js";

/**
 * What the token and introspection endpoints do between the parsed form and
 * the response body, in one place for both ways they are served: through
 * fastify (plugins/oauth-routes.ts) and beneath it
 * (plugins/lean-token-endpoints.ts). Only the HTTP framing differs between
 * the two; the parameters, the RPCs and the JSON are these.
 */

/** The token request's parameters (RFC 6749 §4.1.3, §6, §2.3.1; RFC 7636 §4.5), with their Appendix A syntax. */
export const TOKEN_REQUEST_PARAMETERS: Readonly<Record<string, ParameterSyntax>> = {
  grant_type: { pattern: GRANT_NAME, maxLength: 256 },
  code: { pattern: VSCHAR, maxLength: 512 },
  redirect_uri: { pattern: VSCHAR, maxLength: 2048 },
  code_verifier: { pattern: VSCHAR, maxLength: 256 },
  refresh_token: { pattern: VSCHAR, maxLength: 1024 },
  // RFC 6749 §5.2 names a malformed scope invalid_scope: the authz service judges it.
  scope: { maxLength: 1024 },
  client_id: { pattern: VSCHAR, maxLength: 256 },
  client_secret: { pattern: VSCHAR, maxLength: 512 },
  ...CLIENT_ASSERTION_PARAMETERS,
  ...SERVICE_GRANT_PARAMETERS,
};
/** The token request's one required parameter. */
export const TOKEN_REQUEST_REQUIRED: readonly string[] = ["grant_type"];

/** RFC 7662 §2.1 and RFC 7009 §2.1 requests (the token itself is checked by the authz service after client authentication). */
export const TOKEN_OPERATION_PARAMETERS: Readonly<Record<string, ParameterSyntax>> = {
  token: { pattern: VSCHAR, maxLength: 8192 },
  token_type_hint: { pattern: GRANT_NAME, maxLength: 64 },
  client_id: { pattern: VSCHAR, maxLength: 256 },
  client_secret: { pattern: VSCHAR, maxLength: 512 },
  ...CLIENT_ASSERTION_PARAMETERS,
};

/** The description of the unsupported_grant_type error (RFC 6749 §5.2). */
export const UNSUPPORTED_GRANT_TYPE = "grant_type must be authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:token-exchange";

type Form = Partial<Record<string, string>>;

/**
 * RFC 6749 §3.2 token endpoint: the form's grant as its RPC
 * (authorization_code §4.1.3, refresh_token §6, client_credentials §4.4,
 * token exchange RFC 8693), with the request's `resource` parameters
 * (RFC 8707 §2, in order). "unsupported" for any other grant type; an RPC's
 * failure is thrown as the RPC threw it, and a second resource for a grant
 * that takes one as OnlyOneResource (service-grants.ts).
 */
export async function requestToken(
  authz: Client<typeof AuthorizationService>,
  form: Form,
  resources: readonly string[],
  callOptions: CallOptions,
): Promise<TokenSet | undefined | "unsupported"> {
  switch (form.grant_type) {
    case "authorization_code":
      return (
        await authz.exchangeCode(
          { code: form.code ?? "", redirectUri: form.redirect_uri ?? "", codeVerifier: form.code_verifier ?? "", resource: [...resources], ...clientFields(form) },
          callOptions,
        )
      ).token;
    case "refresh_token":
      return (await authz.refresh({ refreshToken: form.refresh_token ?? "", scope: form.scope ?? "", resource: [...resources], ...clientFields(form) }, callOptions)).token;
    default: {
      const granted = await requestServiceGrant(authz, form, resources, callOptions);
      return granted === undefined ? "unsupported" : granted.token;
    }
  }
}

/** RFC 6749 §5.1: the access token response's JSON, field names verbatim. */
export function tokenResponseBody(token: TokenSet): string {
  const body: Record<string, string | number> = {
    access_token: token.accessToken,
    token_type: token.tokenType,
    expires_in: Number(token.expiresIn),
  };
  if (token.refreshToken !== "") body.refresh_token = token.refreshToken;
  if (token.scope !== "") body.scope = token.scope;
  // RFC 8693 §2.2.1.
  if (token.issuedTokenType !== "") body.issued_token_type = token.issuedTokenType;
  // OpenID Connect Core §3.1.3.3.
  if (token.idToken !== "") body.id_token = token.idToken;
  return JSON.stringify(body);
}

/** The introspection request as its RPC (RFC 7662 §2.1). */
export function requestIntrospection(authz: Client<typeof AuthorizationService>, form: Form, callOptions: CallOptions): Promise<IntrospectResponse> {
  return authz.introspect({ token: form.token ?? "", tokenTypeHint: form.token_type_hint ?? "", ...clientFields(form) }, callOptions);
}

/** RFC 7662 §2.2: the introspection response's JSON; an inactive token is {"active": false} and nothing more. */
export function introspectionResponseBody(result: IntrospectResponse): string {
  const body: Record<string, unknown> = { active: result.active };
  if (result.active) {
    const put = (name: string, value: string | bigint) => {
      if (value !== "" && value !== 0n) body[name] = typeof value === "bigint" ? Number(value) : value;
    };
    put("scope", result.scope);
    put("client_id", result.clientId);
    put("username", result.username);
    put("token_type", result.tokenType);
    put("exp", result.exp);
    put("iat", result.iat);
    put("sub", result.sub);
    if (result.aud.length > 0) body.aud = result.aud.length === 1 ? result.aud[0] : [...result.aud];
    put("iss", result.iss);
    put("jti", result.jti);
    put("auth_time", result.authTime);
    // RFC 8693 §4.1: the delegation chain of an exchanged token.
    if (result.act !== undefined) body.act = actorClaim(result.act);
    // Issue 12: the resource owner's current groups (RFC 7662 §2.2 allows further members).
    if (result.groups.length > 0) body.groups = [...result.groups];
  }
  return JSON.stringify(body);
}

/** RFC 8693 §4.1 `act` as JSON: `{sub, act: {sub, ...}}`, from the RPC's nested Actor. */
function actorClaim(actor: Actor): Record<string, unknown> {
  return actor.act === undefined ? { sub: actor.sub } : { sub: actor.sub, act: actorClaim(actor.act) };
}
