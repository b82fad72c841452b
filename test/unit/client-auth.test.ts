import { describe, expect, it } from "vitest";
import {
  authenticateClient,
  parseBasicAuthorization,
  type ClientCredentials,
} from "../../services/authz/oauth/client-auth.js";
import type { OAuthErrorCode } from "../../services/authz/oauth/errors.js";
import type { Client } from "../../services/authz/oauth/model.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";

function makeClient(overrides: Partial<Client> & Pick<Client, "id" | "type">): Client {
  return {
    name: overrides.id,
    secretHashes: [],
    redirectUris: ["https://client.example/cb"],
    scopes: ["read"],
    defaultScopes: ["read"],
    grantTypes: new Set(["authorization_code", "refresh_token"]),
    responseTypes: new Set(["code"]),
    pkce: { required: true, allowPlain: false },
    refreshGraceSeconds: 0,
    firstParty: false,
    introspectAnyToken: false,
    ...overrides,
  };
}

const OLD_SECRET = "old-secret-4Qk9z0mP2vYc8LwT1sRr";
const NEW_SECRET = "new-secret-H7dXb3nJ6qWe5UaF0gKi";
/** An id and secret with the characters RFC 6749 §2.3.1 makes clients form-encode. */
const ODD_ID = "svc:a+b c";
const ODD_SECRET = "p@ss:w+rd %/é";

const web = makeClient({ id: "web", type: "confidential", secretHashes: [hashSecret(OLD_SECRET), hashSecret(NEW_SECRET)] });
const odd = makeClient({ id: ODD_ID, type: "confidential", secretHashes: [hashSecret(ODD_SECRET)] });
const spa = makeClient({ id: "spa", type: "public" });
const clients = new Map([web, odd, spa].map((client) => [client.id, client]));
const lookup = (clientId: string) => clients.get(clientId);

/** application/x-www-form-urlencoded, as RFC 6749 Appendix B defines it. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice("v=".length);
}

/** RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`. */
function basic(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`, "utf8").toString("base64")}`;
}

/** Basic with a raw (not form-encoded) user-pass, for headers RFC 6749 §2.3.1 would not produce. */
function rawBasic(userPass: string): string {
  return `Basic ${Buffer.from(userPass, "utf8").toString("base64")}`;
}

function credentials(overrides: Partial<ClientCredentials>): ClientCredentials {
  return { authorization: undefined, clientId: "", clientSecret: "", ...overrides };
}

function oauthError(code: OAuthErrorCode) {
  return expect.objectContaining({ name: "OAuthError", code });
}

describe("authenticateClient", () => {
  it.each<[string, ClientCredentials, Client]>([
    ["RFC 6749 §2.3.1: client_secret_basic authenticates a confidential client", credentials({ authorization: basic("web", NEW_SECRET) }), web],
    ["RFC 6749 §2.3.1: client_secret_post authenticates a confidential client", credentials({ clientId: "web", clientSecret: NEW_SECRET }), web],
    ["secret rotation: the older of two registered secrets works by Basic", credentials({ authorization: basic("web", OLD_SECRET) }), web],
    ["secret rotation: the older of two registered secrets works in the body", credentials({ clientId: "web", clientSecret: OLD_SECRET }), web],
    ["RFC 6749 §2.3.1: a body client_id equal to the Basic one is accepted", credentials({ authorization: basic("web", NEW_SECRET), clientId: "web" }), web],
    ["RFC 6749 §2.3.1: an id with ':', '+' and space and a secret with '%', '/' and non-ASCII are form-decoded from Basic", credentials({ authorization: basic(ODD_ID, ODD_SECRET) }), odd],
    ["RFC 6749 §2.3.1: the same odd client authenticates by body fields, which are not form-encoded twice", credentials({ clientId: ODD_ID, clientSecret: ODD_SECRET }), odd],
    ["RFC 7617 §2: the Basic scheme name is case-insensitive", credentials({ authorization: basic("web", NEW_SECRET).replace("Basic", "bASIC") }), web],
    ["RFC 6749 §4.1.3: a public client identifies itself by client_id alone", credentials({ clientId: "spa" }), spa],
    ["RFC 6749 §2.3: a non-Basic authorization scheme is ignored (public client)", credentials({ authorization: "Bearer some-access-token", clientId: "spa" }), spa],
    ["RFC 6749 §2.3: a non-Basic authorization scheme is ignored (client_secret_post)", credentials({ authorization: "DPoP abc.def.ghi", clientId: "web", clientSecret: NEW_SECRET }), web],
  ])("%s", (_name, presented, expected) => {
    expect(authenticateClient(lookup, presented)).toBe(expected);
  });

  it.each<[string, ClientCredentials, OAuthErrorCode]>([
    ["RFC 6749 §2.3: Basic and a body client_secret together are invalid_request", credentials({ authorization: basic("web", NEW_SECRET), clientId: "web", clientSecret: NEW_SECRET }), "invalid_request"],
    ["RFC 6749 §2.3: Basic and a body client_secret are invalid_request even when the body has no client_id", credentials({ authorization: basic("web", NEW_SECRET), clientSecret: NEW_SECRET }), "invalid_request"],
    ["RFC 6749 §2.3.1: a body client_id differing from the Basic one is invalid_request", credentials({ authorization: basic("web", NEW_SECRET), clientId: "spa" }), "invalid_request"],
    ["RFC 6749 §5.2: no client identification at all is invalid_client", credentials({}), "invalid_client"],
    ["RFC 6749 §5.2: an unknown client_id is invalid_client", credentials({ clientId: "nobody", clientSecret: NEW_SECRET }), "invalid_client"],
    ["RFC 6749 §5.2: an unknown client by Basic is invalid_client", credentials({ authorization: basic("nobody", NEW_SECRET) }), "invalid_client"],
    ["RFC 6749 §5.2: a wrong secret by Basic is invalid_client", credentials({ authorization: basic("web", "not-the-secret") }), "invalid_client"],
    ["RFC 6749 §5.2: a wrong secret in the body is invalid_client", credentials({ clientId: "web", clientSecret: "not-the-secret" }), "invalid_client"],
    ["RFC 6749 §5.2: a secret differing only in case is invalid_client", credentials({ clientId: "web", clientSecret: NEW_SECRET.toUpperCase() }), "invalid_client"],
    ["RFC 6749 §5.2: the stored hash presented as the secret is invalid_client", credentials({ clientId: "web", clientSecret: hashSecret(NEW_SECRET) }), "invalid_client"],
    ["RFC 6749 §5.2: a confidential client without its secret is invalid_client", credentials({ clientId: "web" }), "invalid_client"],
    ["RFC 6749 §5.2: a confidential client with an empty Basic password is invalid_client", credentials({ authorization: basic("web", "") }), "invalid_client"],
    ["RFC 6749 §5.2: one client's secret does not authenticate another", credentials({ authorization: basic(ODD_ID, NEW_SECRET) }), "invalid_client"],
    ["RFC 6749 §2.1: a public client presenting a body secret is invalid_client", credentials({ clientId: "spa", clientSecret: "anything" }), "invalid_client"],
    ["RFC 6749 §2.1: a public client presenting Basic credentials is invalid_client", credentials({ authorization: basic("spa", "anything") }), "invalid_client"],
    ["RFC 6749 §2.1: a public client presenting Basic with an empty password is invalid_client", credentials({ authorization: basic("spa", "") }), "invalid_client"],
    ["RFC 6749 §2.3.1: an id with '+' sent without form-encoding decodes to another id: invalid_client", credentials({ authorization: rawBasic(`${ODD_ID}:${ODD_SECRET}`) }), "invalid_client"],
    ["RFC 6749 §2.3.1: an empty Basic user-id is invalid_client", credentials({ authorization: rawBasic(`:${NEW_SECRET}`) }), "invalid_client"],
    ["RFC 7617 §2: a Basic header without credentials is invalid_client", credentials({ authorization: "Basic", clientId: "spa" }), "invalid_client"],
    ["RFC 7617 §2: a Basic header that is not base64 is invalid_client", credentials({ authorization: "Basic !!!not-base64!!!", clientId: "spa" }), "invalid_client"],
    ["RFC 7617 §2: Basic credentials without a colon are invalid_client", credentials({ authorization: rawBasic("web") }), "invalid_client"],
    ["RFC 6749 §2.3.1: a malformed percent-encoding in Basic is invalid_client", credentials({ authorization: rawBasic(`web:%zz`) }), "invalid_client"],
  ])("%s", (_name, presented, code) => {
    expect(() => authenticateClient(lookup, presented)).toThrow(oauthError(code));
  });

  it("RFC 6749 §5.2: every invalid_client failure says the same thing, whichever part was wrong", () => {
    const descriptions = [
      credentials({ clientId: "nobody", clientSecret: NEW_SECRET }),
      credentials({ clientId: "web", clientSecret: "not-the-secret" }),
      credentials({ clientId: "web" }),
      credentials({ clientId: "spa", clientSecret: "anything" }),
    ].map((presented) => {
      try {
        authenticateClient(lookup, presented);
      } catch (error) {
        return (error as Error).message;
      }
      return "authenticated";
    });
    expect(new Set(descriptions)).toEqual(new Set(["invalid_client: client authentication failed"]));
  });

  it("RFC 6749 §2.3.1: the client is looked up once, by the id that Basic names", () => {
    const seen: string[] = [];
    expect(() =>
      authenticateClient((id) => (seen.push(id), lookup(id)), credentials({ authorization: basic("web", "nope"), clientId: "web" })),
    ).toThrow(oauthError("invalid_client"));
    expect(seen).toEqual(["web"]);
  });
});

describe("parseBasicAuthorization", () => {
  it.each<[string, string | undefined, { clientId: string; clientSecret: string } | undefined]>([
    ["RFC 6749 §2.3: no authorization header", undefined, undefined],
    ["RFC 6749 §2.3: an empty authorization header", "", undefined],
    ["RFC 6750 §2.1: a Bearer header is another scheme", "Bearer abc", undefined],
    ["RFC 7235 §2.1: a scheme that merely starts with 'Basic' is another scheme", "Basicish abc", undefined],
    ["RFC 7617 §2: Basic with plain credentials", basic("web", "secret"), { clientId: "web", clientSecret: "secret" }],
    ["RFC 7617 §2: extra spaces around the token68 are tolerated", `Basic   ${Buffer.from("web:secret").toString("base64")}  `, { clientId: "web", clientSecret: "secret" }],
    ["RFC 6749 §2.3.1: '+' is a form-encoded space", rawBasic("a+b:c+d"), { clientId: "a b", clientSecret: "c d" }],
    ["RFC 6749 §2.3.1: %2B is a literal '+', %3A a literal ':'", rawBasic("a%2Bb%3Ac:d%3Ae"), { clientId: "a+b:c", clientSecret: "d:e" }],
    ["RFC 6749 §2.3.1: percent-encoded UTF-8 is decoded", rawBasic("caf%C3%A9:%E2%82%AC"), { clientId: "café", clientSecret: "€" }],
    ["RFC 7617 §2: the user-id ends at the first colon; the password may contain colons", rawBasic("web:a:b:c"), { clientId: "web", clientSecret: "a:b:c" }],
    ["RFC 7617 §2: an empty password is a present, empty secret", rawBasic("web:"), { clientId: "web", clientSecret: "" }],
    ["RFC 6749 §2.3.1: the odd id and secret round-trip through form-encoding", basic(ODD_ID, ODD_SECRET), { clientId: ODD_ID, clientSecret: ODD_SECRET }],
  ])("%s", (_name, header, expected) => {
    expect(parseBasicAuthorization(header)).toEqual(expected);
  });

  it.each<[string, string]>([
    ["RFC 7617 §2: 'Basic' alone", "Basic"],
    ["RFC 7617 §2: 'Basic ' with no token68", "Basic "],
    ["RFC 7617 §2: a token68 with characters outside base64", "Basic a!b"],
    ["RFC 7617 §2: a base64url token68 ('-', '_') is not base64", "Basic d2ViOnNlY3-_"],
    ["RFC 7617 §2: a tab instead of a space", `Basic\t${Buffer.from("web:secret").toString("base64")}`],
    ["RFC 7617 §2: two token68s", `Basic ${Buffer.from("web:secret").toString("base64")} extra`],
    ["RFC 7617 §2: no colon in the decoded credentials", rawBasic("websecret")],
    ["RFC 6749 §2.3.1: a truncated percent-encoding in the id", rawBasic("web%2:secret")],
    ["RFC 6749 §2.3.1: an invalid percent-encoding in the secret", rawBasic("web:%G0")],
    ["RFC 6749 §2.3.1: a percent-encoding of invalid UTF-8", rawBasic("web:%C3")],
  ])("%s is invalid_client", (_name, header) => {
    expect(() => parseBasicAuthorization(header)).toThrow(oauthError("invalid_client"));
  });
});
