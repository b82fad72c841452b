import type { ParameterSyntax } from "./form-body.js";
import { parseForm, REPEATABLE_PARAMETERS } from "./parse-form.js";

/**
 * The authorization request's parameters (RFC 6749 §4.1.1, §4.2.1; RFC 7636
 * §4.3), with generous length bounds only: what they mean, and which errors
 * they cause, is the authz service's to decide, because only it can send an
 * error back to a verified redirect URI (RFC 6749 §4.1.2.1). A parameter the
 * gateway refused itself could only be shown on an error page.
 */
export const AUTHORIZATION_REQUEST_PARAMETERS = {
  response_type: { maxLength: 64 },
  client_id: { maxLength: 256 },
  redirect_uri: { maxLength: 2048 },
  scope: { maxLength: 1024 },
  state: { maxLength: 1024 },
  code_challenge: { maxLength: 256 },
  code_challenge_method: { maxLength: 32 },
  // OpenID Connect Core 1.0 §3.1.2.1: bounds well above what the authz service accepts, so that
  // its specific error (nonce too long, ...) reaches the client by redirect.
  nonce: { maxLength: 2048 },
  prompt: { maxLength: 256 },
  max_age: { maxLength: 64 },
  login_hint: { maxLength: 256 },
  id_token_hint: { maxLength: 4096 },
  display: { maxLength: 64 },
  ui_locales: { maxLength: 256 },
  claims_locales: { maxLength: 256 },
  acr_values: { maxLength: 256 },
  // §6: refused by the authz service with request_not_supported / request_uri_not_supported.
  request: { maxLength: 4096 },
  request_uri: { maxLength: 2048 },
  // RFC 8707 §2: may repeat; each is judged by the authz service (invalid_target, by redirect).
  resource: { maxLength: 2048, maxRepeats: 16 },
} as const satisfies Record<string, ParameterSyntax>;

export type AuthorizationParameters = Partial<Record<Exclude<keyof typeof AUTHORIZATION_REQUEST_PARAMETERS, "resource">, string>> & {
  /** RFC 8707 §2 resource indicators, in order (parseForm's repeatable parameter). */
  resource?: string[];
};

/** The OpenID Connect parameters as AuthorizeRequest fields (empty when absent). */
export function openIdParameters(parameters: AuthorizationParameters) {
  return {
    nonce: parameters.nonce ?? "",
    prompt: parameters.prompt ?? "",
    maxAge: parameters.max_age ?? "",
    loginHint: parameters.login_hint ?? "",
    idTokenHint: parameters.id_token_hint ?? "",
    display: parameters.display ?? "",
    uiLocales: parameters.ui_locales ?? "",
    claimsLocales: parameters.claims_locales ?? "",
    request: parameters.request ?? "",
    requestUri: parameters.request_uri ?? "",
  };
}

/**
 * The request to resume once the user has just signed in: what forced the
 * login is satisfied by that login, so prompt=login and select_account are
 * dropped, and max_age too (the new session is seconds old; a max_age of 0
 * would otherwise loop). The ID Token's auth_time still tells the client when
 * the login happened (OpenID Connect Core §3.1.2.1: clients check it).
 */
export function afterLogin(parameters: AuthorizationParameters): AuthorizationParameters {
  const { max_age: _maxAge, ...rest } = parameters;
  const prompt = (parameters.prompt ?? "").split(" ").filter((v) => v !== "" && v !== "login" && v !== "select_account").join(" ");
  const relaxed: AuthorizationParameters = { ...rest };
  if (prompt === "") delete relaxed.prompt;
  else relaxed.prompt = prompt;
  return relaxed;
}

/**
 * The authorization request to resume after the login page (or after "use
 * another account"): the known parameters only, form-encoded. The browser
 * carries it in a hidden field and the gateway sends it back to its own
 * authorization endpoint, which validates it again from scratch; it never
 * becomes a redirect to anywhere else.
 */
export function serializeAuthorizationRequest(parameters: AuthorizationParameters): string {
  const out = new URLSearchParams();
  for (const name of Object.keys(AUTHORIZATION_REQUEST_PARAMETERS) as Array<keyof AuthorizationParameters>) {
    for (const value of [parameters[name] ?? []].flat()) if (value !== "") out.append(name, value);
  }
  return out.toString();
}

/**
 * Reads a resumed authorization request back (strictly: see parseForm) and
 * returns its canonical form, or undefined when it is malformed or carries
 * a parameter beyond its bound.
 */
export function parseResumedAuthorizationRequest(text: string): string | undefined {
  let parsed: Record<string, string | string[]>;
  try {
    parsed = parseForm(Buffer.from(text, "utf8"), { repeatable: REPEATABLE_PARAMETERS });
  } catch {
    return undefined;
  }
  const parameters: Record<string, string | string[]> = {};
  for (const [name, syntax] of Object.entries(AUTHORIZATION_REQUEST_PARAMETERS) as Array<[keyof AuthorizationParameters, ParameterSyntax]>) {
    const value = parsed[name];
    if (value === undefined) continue;
    const values = [value].flat();
    if (values.some((one) => one.length > syntax.maxLength) || values.length > (syntax.maxRepeats ?? 1)) return undefined;
    parameters[name] = value;
  }
  return parameters.client_id === undefined ? undefined : serializeAuthorizationRequest(parameters as AuthorizationParameters);
}
