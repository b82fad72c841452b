import { OAuthError } from "./errors.js";
import type { Client, GrantType, RegistrationPolicy } from "./model.js";
import { checkSelfRegisteredRedirectUri } from "./redirect-uri.js";

/**
 * Client metadata (RFC 7591 §2) as gatehouse accepts it from a client that
 * registers itself: by RFC 7591 dynamic registration, or in a Client ID
 * Metadata Document. Wire names, because this is what is stored and echoed
 * back (RFC 7591 §3.2.1: the response "contains ... all registered metadata
 * about the client").
 */
export interface ClientMetadata {
  redirect_uris: string[];
  token_endpoint_auth_method: "none" | "client_secret_basic" | "client_secret_post";
  grant_types: Array<"authorization_code" | "refresh_token">;
  response_types: ["code"];
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  /** The scopes granted, space-separated: what was asked, narrowed to the policy's (RFC 7591 §2 lets the server replace values). */
  scope: string;
  contacts?: string[];
  tos_uri?: string;
  policy_uri?: string;
  software_id?: string;
  software_version?: string;
}

/** Where the metadata came from: what each may contain differs (secrets, defaults). */
export type MetadataOrigin = "registration" | "metadata-document";

const MAX_REDIRECT_URIS = 10;
const MAX_URI_LENGTH = 2_000;
const MAX_TEXT_LENGTH = 200;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** Printable text with no control characters (names are shown on the consent page). */
const TEXT = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u;

const invalid = (description: string) => new OAuthError("invalid_client_metadata", description);

/**
 * Validates client metadata and fills in what gatehouse decides, or throws
 * RFC 7591 §3.2.2 `invalid_redirect_uri` / `invalid_client_metadata`.
 *
 * - RFC 7591 §2: metadata the server does not understand is ignored.
 * - `redirect_uris` are required (the only grant is the code grant) and must
 *   follow RFC 8252 / RFC 6749 §3.1.2 (redirect-uri.ts checkSelfRegisteredRedirectUri).
 * - `token_endpoint_auth_method`: `none` (a public client, PKCE S256
 *   required) unless the policy allows confidential clients; RFC 7591's
 *   default `client_secret_basic` applies only then. A metadata document
 *   can hold no shared secret (draft-ietf-oauth-client-id-metadata-document
 *   §4.1: symmetric methods "MUST NOT" be used), so it is always `none`.
 * - `grant_types` ⊆ {authorization_code, refresh_token}, `response_types`
 *   = [code], consistent with each other (RFC 7591 §2.1).
 * - `scope` is narrowed to the policy's scopes; omitted, it is all of them.
 */
export function parseClientMetadata(input: unknown, policy: Pick<RegistrationPolicy, "allowConfidential" | "scopes">, origin: MetadataOrigin): ClientMetadata {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw invalid("the client metadata must be a JSON object");
  const raw = input as Record<string, unknown>;

  const redirectUris = raw.redirect_uris;
  if (!Array.isArray(redirectUris) || redirectUris.length === 0) {
    throw new OAuthError("invalid_redirect_uri", "redirect_uris is required: a non-empty array of URIs");
  }
  if (redirectUris.length > MAX_REDIRECT_URIS) throw new OAuthError("invalid_redirect_uri", `at most ${MAX_REDIRECT_URIS} redirect_uris`);
  redirectUris.forEach((uri, i) => {
    if (typeof uri !== "string" || uri.length > MAX_URI_LENGTH) throw new OAuthError("invalid_redirect_uri", `redirect_uris[${i}] must be a URI of at most ${MAX_URI_LENGTH} characters`);
    const problem = checkSelfRegisteredRedirectUri(uri);
    if (problem !== undefined) throw new OAuthError("invalid_redirect_uri", `redirect_uris[${i}] ${problem}`);
  });

  const method = optionalString(raw, "token_endpoint_auth_method");
  let authMethod: ClientMetadata["token_endpoint_auth_method"];
  if (origin === "metadata-document") {
    if (raw.client_secret !== undefined || raw.client_secret_expires_at !== undefined) throw invalid("a client ID metadata document must not contain a client_secret");
    if (method !== undefined && method !== "none") throw invalid("token_endpoint_auth_method must be none: a metadata document's client has no shared secret");
    authMethod = "none";
  } else if (method === undefined) {
    // RFC 7591 §2: "If unspecified or omitted, the default is client_secret_basic"; the server may replace it.
    authMethod = policy.allowConfidential ? "client_secret_basic" : "none";
  } else if (method === "none") {
    authMethod = "none";
  } else if (method === "client_secret_basic" || method === "client_secret_post") {
    if (!policy.allowConfidential) throw invalid("only public clients may register here: token_endpoint_auth_method must be none");
    authMethod = method;
  } else {
    throw invalid(`token_endpoint_auth_method ${JSON.stringify(method.slice(0, 64))} is not supported (none${policy.allowConfidential ? ", client_secret_basic, client_secret_post" : ""})`);
  }

  const grantTypes = optionalStrings(raw, "grant_types") ?? ["authorization_code"];
  for (const grant of grantTypes) {
    if (grant !== "authorization_code" && grant !== "refresh_token") throw invalid(`grant_types: ${JSON.stringify(grant.slice(0, 64))} is not supported (authorization_code, refresh_token)`);
  }
  // RFC 7591 §2.1: grant_types and response_types must be consistent; the code grant is the only way in.
  if (!grantTypes.includes("authorization_code")) throw invalid("grant_types must include authorization_code");
  const responseTypes = optionalStrings(raw, "response_types") ?? ["code"];
  if (responseTypes.length !== 1 || responseTypes[0] !== "code") throw invalid('response_types must be ["code"]');

  const scope = optionalString(raw, "scope");
  let granted: readonly string[] = policy.scopes;
  if (scope !== undefined) {
    const asked = scope.split(" ").filter((token) => token !== "");
    if (asked.some((token) => !SCOPE_TOKEN.test(token))) throw invalid("scope must be space-separated scope-tokens (RFC 6749 §3.3)");
    granted = policy.scopes.filter((name) => asked.includes(name));
  }

  const contacts = optionalStrings(raw, "contacts");
  if (contacts !== undefined && (contacts.length > 10 || contacts.some((c) => c.length > MAX_TEXT_LENGTH || !TEXT.test(c)))) throw invalid("contacts must be at most 10 short strings");

  const metadata: ClientMetadata = {
    redirect_uris: [...new Set(redirectUris as string[])],
    token_endpoint_auth_method: authMethod,
    grant_types: [...new Set(grantTypes)] as ClientMetadata["grant_types"],
    response_types: ["code"],
    scope: granted.join(" "),
  };
  const name = optionalString(raw, "client_name");
  if (name !== undefined) {
    if (name.length > MAX_TEXT_LENGTH || !TEXT.test(name)) throw invalid(`client_name must be at most ${MAX_TEXT_LENGTH} printable characters`);
    metadata.client_name = name;
  }
  for (const field of ["client_uri", "logo_uri", "tos_uri", "policy_uri"] as const) {
    const uri = optionalString(raw, field);
    if (uri === undefined) continue;
    if (!isHttpsUrl(uri)) throw invalid(`${field} must be an https URL of at most ${MAX_URI_LENGTH} characters`);
    metadata[field] = uri;
  }
  for (const field of ["software_id", "software_version"] as const) {
    const value = optionalString(raw, field);
    if (value === undefined) continue;
    if (value.length > MAX_TEXT_LENGTH || !TEXT.test(value)) throw invalid(`${field} must be at most ${MAX_TEXT_LENGTH} printable characters`);
    metadata[field] = value;
  }
  if (contacts !== undefined) metadata.contacts = contacts;
  return metadata;
}

/**
 * The Client the protocol core works with, from self-registered metadata:
 * never first-party (consent is always asked), PKCE S256 required whatever
 * the client type (RFC 9700 §2.1.1), loopback redirect URIs with any port
 * (RFC 8252 §7.3).
 */
export function clientFromMetadata(
  clientId: string,
  metadata: ClientMetadata,
  source: "registration" | "metadata-document",
  secretHash?: string,
): Client {
  const grantTypes = new Set<GrantType>(metadata.grant_types);
  const scopes = metadata.scope === "" ? [] : metadata.scope.split(" ");
  return {
    id: clientId,
    name: metadata.client_name ?? clientId,
    type: metadata.token_endpoint_auth_method === "none" ? "public" : "confidential",
    secretHashes: secretHash === undefined ? [] : [secretHash],
    redirectUris: metadata.redirect_uris,
    scopes,
    defaultScopes: scopes,
    grantTypes,
    responseTypes: new Set(["code"]),
    pkce: { required: true, allowPlain: false },
    refreshGraceSeconds: 0,
    firstParty: false,
    introspectAnyToken: false,
    selfRegistered: source,
    loopbackRedirectAnyPort: true,
    ...(metadata.logo_uri === undefined ? {} : { logoUri: metadata.logo_uri }),
    ...(metadata.client_uri === undefined ? {} : { clientUri: metadata.client_uri }),
  };
}

function optionalString(raw: Record<string, unknown>, field: string): string | undefined {
  const value = raw[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${field} must be a string`);
  return value;
}

function optionalStrings(raw: Record<string, unknown>, field: string): string[] | undefined {
  const value = raw[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length > 20 || !value.every((entry) => typeof entry === "string")) throw invalid(`${field} must be an array of strings`);
  return value as string[];
}

function isHttpsUrl(value: string): boolean {
  if (value.length > MAX_URI_LENGTH || value.includes("#")) return false;
  try {
    const url = new URL(value);
    return url.protocol === "https:" && url.hostname !== "" && url.username === "" && url.password === "";
  } catch {
    return false;
  }
}
