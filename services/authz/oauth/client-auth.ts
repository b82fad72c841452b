import { OAuthError } from "./errors.js";
import type { Client } from "./model.js";
import { constantTimeEqual, hashSecret } from "./secrets.js";

/** How a client presented itself: the `authorization` header and the body fields (RFC 6749 §2.3.1). */
export interface ClientCredentials {
  authorization: string | undefined;
  clientId: string;
  clientSecret: string;
  /** RFC 7521 §4.2 (private_key_jwt, RFC 7523 §2.2): authenticated by oauth/client-assertion.ts instead. */
  clientAssertionType?: string;
  clientAssertion?: string;
}

export type ClientLookup = (clientId: string) => Client | undefined;

/**
 * Authenticates the client of a token, introspection or revocation request
 * (RFC 6749 §2.3, §3.2.1). A confidential client proves itself with its
 * secret, by HTTP Basic (client_secret_basic) or body fields
 * (client_secret_post), never both (RFC 6749 §2.3: "MUST NOT use more than
 * one authentication method in each request"). A public client only names
 * itself with client_id (RFC 6749 §4.1.3).
 *
 * Every failure is invalid_client (RFC 6749 §5.2) and says nothing about
 * which part was wrong.
 */
export function authenticateClient(lookup: ClientLookup, credentials: ClientCredentials): Client {
  const basic = parseBasicAuthorization(credentials.authorization);
  if (basic !== undefined && credentials.clientSecret !== "") {
    throw new OAuthError("invalid_request", "client authenticated with more than one method");
  }
  if (basic !== undefined && credentials.clientId !== "" && credentials.clientId !== basic.clientId) {
    throw new OAuthError("invalid_request", "client_id differs from the client authenticated by HTTP Basic");
  }
  const clientId = basic?.clientId ?? credentials.clientId;
  const secret = basic?.clientSecret ?? credentials.clientSecret;
  const presentedSecret = basic !== undefined || secret !== "";

  if (clientId === "") throw new OAuthError("invalid_client", "client authentication failed");
  const client = lookup(clientId);
  if (client === undefined) throw new OAuthError("invalid_client", "client authentication failed");

  if (client.type === "public") {
    // A public client has no secret; one that presents a secret is not who it says.
    if (presentedSecret) throw new OAuthError("invalid_client", "client authentication failed");
    return client;
  }
  if (!presentedSecret || !matchesSecret(client, secret)) {
    throw new OAuthError("invalid_client", "client authentication failed");
  }
  return client;
}

/**
 * The client_id a request names (HTTP Basic's user, else the body's), before
 * it is authenticated, so that the caller can look the client up (the
 * directory is async) and hand authenticateClient a ready answer. "" when it
 * names none or the header is malformed: authenticateClient then refuses.
 */
export function presentedClientId(credentials: ClientCredentials): string {
  try {
    return parseBasicAuthorization(credentials.authorization)?.clientId ?? credentials.clientId;
  } catch {
    return "";
  }
}

/** Compares the secret's digest with each registered digest in constant time (all of them, always). */
function matchesSecret(client: Client, secret: string): boolean {
  const digest = hashSecret(secret);
  let matched = false;
  for (const expected of client.secretHashes) matched = constantTimeEqual(digest, expected) || matched;
  return matched;
}

/**
 * RFC 6749 §2.3.1 (and RFC 7617): `Basic base64(urlencode(id) ":" urlencode(secret))`.
 * Returns undefined when the header is absent or another scheme; throws
 * invalid_client when it is Basic but malformed.
 */
export function parseBasicAuthorization(header: string | undefined): { clientId: string; clientSecret: string } | undefined {
  if (header === undefined || header === "") return undefined;
  const match = /^Basic[ ]+([A-Za-z0-9+/]+=*)[ ]*$/i.exec(header);
  if (match === null) {
    if (/^Basic\b/i.test(header)) throw new OAuthError("invalid_client", "malformed HTTP Basic credentials");
    return undefined;
  }
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw new OAuthError("invalid_client", "malformed HTTP Basic credentials");
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw new OAuthError("invalid_client", "malformed HTTP Basic credentials");
  }
}

/**
 * application/x-www-form-urlencoded decoding of one value (RFC 6749 Appendix
 * B). A value with neither `%` nor `+` (every generated client id and secret)
 * is its own decoding: half the cost of parsing a Basic header, which every
 * client authentication does.
 */
function formDecode(value: string): string {
  if (value.indexOf("%") === -1 && value.indexOf("+") === -1) return value;
  return decodeURIComponent(value.replace(/\+/g, " "));
}
