import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseClientMetadata, clientFromMetadata } from "../../services/authz/oauth/client-metadata.js";
import { checkClientIdUrl } from "../../services/authz/oauth/client-metadata-document.js";
import { OAuthError } from "../../services/authz/oauth/errors.js";
import { checkSelfRegisteredRedirectUri, matchesLoopbackAnyPort, matchRedirectUri } from "../../services/authz/oauth/redirect-uri.js";

const PUBLIC_ONLY = { allowConfidential: false, scopes: ["read", "write"] } as const;
const CONFIDENTIAL_ALLOWED = { allowConfidential: true, scopes: ["read", "write"] } as const;
const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof OAuthError) return error.code;
    throw error;
  }
};

describe("checkSelfRegisteredRedirectUri (RFC 8252, RFC 6749 §3.1.2)", () => {
  it.each([
    ["RFC 8252 §7.3: an IPv4 loopback http URI", "http://127.0.0.1/callback"],
    ["RFC 8252 §7.3: an IPv4 loopback http URI with a port", "http://127.0.0.1:8080/callback"],
    ["RFC 8252 §7.3: an IPv6 loopback http URI", "http://[::1]/callback"],
    ["RFC 8252 §8.3: localhost (NOT RECOMMENDED, accepted: MCP clients use it)", "http://localhost:3000/callback"],
    ["RFC 8252 §7.1: a reverse-domain private-use scheme", "com.example.app:/oauth2redirect"],
    ["RFC 8252 §7.2 / a web client: https", "https://client.example/cb?x=1"],
  ])("%s is accepted", (_name, uri) => {
    expect(checkSelfRegisteredRedirectUri(uri)).toBeUndefined();
  });
  it.each([
    ["RFC 6749 §3.1.2: a relative URI", "/callback"],
    ["RFC 6749 §3.1.2: a fragment", "https://client.example/cb#x"],
    ["RFC 6749 §3.1.2: an empty fragment", "https://client.example/cb#"],
    ["RFC 8252 §8.3: http on a non-loopback host", "http://client.example/cb"],
    ["RFC 8252 §8.3: http on a private address", "http://10.0.0.1/cb"],
    ["RFC 8252 §7.1: a private-use scheme that is not reverse-domain", "myapp:/cb"],
    ["the javascript scheme", "javascript:alert(1)"],
    ["the data scheme", "data:text/html,hi"],
    ["user information in the URI", "https://user:pw@client.example/cb"],
  ])("%s is refused", (_name, uri) => {
    expect(checkSelfRegisteredRedirectUri(uri)).toBeTypeOf("string");
  });
});

describe("matchRedirectUri with loopbackAnyPort (RFC 8252 §7.3)", () => {
  it.each<[string, string, string, boolean]>([
    ["a registered port-less loopback URI matches any port", "http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true],
    ["a registered port matches another port", "http://127.0.0.1:8080/cb", "http://127.0.0.1:9999/cb", true],
    ["IPv6 loopback with any port", "http://[::1]/cb", "http://[::1]:4000/cb", true],
    ["localhost with any port", "http://localhost/cb", "http://localhost:4000/cb", true],
    ["the path must still match exactly", "http://127.0.0.1/cb", "http://127.0.0.1:5000/cb2", false],
    ["the query must still match exactly", "http://127.0.0.1/cb?a=1", "http://127.0.0.1:5000/cb?a=2", false],
    ["the host must still match exactly (no 127.0.0.1 for localhost)", "http://localhost/cb", "http://127.0.0.1:5000/cb", false],
    ["https is not loopback-lenient", "https://127.0.0.1/cb", "https://127.0.0.1:5000/cb", false],
    ["a non-loopback http host is not lenient", "http://client.example/cb", "http://client.example:5000/cb", false],
    ["dot segments do not normalise into a match", "http://127.0.0.1/cb", "http://127.0.0.1:5000/x/../cb", false],
    ["a fragment never matches", "http://127.0.0.1/cb", "http://127.0.0.1:5000/cb#f", false],
    ["user information never matches", "http://127.0.0.1/cb", "http://u@127.0.0.1:5000/cb", false],
  ])("%s", (_name, registered, requested, matches) => {
    expect(matchesLoopbackAnyPort(registered, requested)).toBe(matches);
    const run = () => matchRedirectUri([registered], requested, { loopbackAnyPort: true });
    if (matches) expect(run()).toBe(requested);
    else expect(run).toThrow(OAuthError);
  });

  it("RFC 9700 §4.1.3: without loopbackAnyPort (configured clients), another port does not match", () => {
    expect(() => matchRedirectUri(["http://127.0.0.1:8080/cb"], "http://127.0.0.1:9999/cb")).toThrow(OAuthError);
  });

  it("property: a loopback URI with any port matches its port-less registration, and only its own path", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.stringMatching(/^[a-z]{1,8}$/), fc.stringMatching(/^[a-z]{1,8}$/), (port, path, other) => {
        const registered = `http://127.0.0.1/${path}`;
        const requested = port === 80 ? `http://127.0.0.1/${path}` : `http://127.0.0.1:${port}/${path}`;
        expect(matchesLoopbackAnyPort(registered, requested)).toBe(true);
        expect(matchesLoopbackAnyPort(registered, requested.replace(`/${path}`, `/${path}${other}`))).toBe(false);
      }),
    );
  });
});

describe("parseClientMetadata (RFC 7591 §2)", () => {
  const minimal = { redirect_uris: ["http://127.0.0.1/cb"] };

  it("RFC 7591 §2: defaults: a public client (none, PKCE), the code grant, response type code, every allowed scope", () => {
    const metadata = parseClientMetadata(minimal, PUBLIC_ONLY, "registration");
    expect(metadata).toEqual({ redirect_uris: ["http://127.0.0.1/cb"], token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"], scope: "read write" });
    const client = clientFromMetadata("id", metadata, "registration");
    expect(client).toMatchObject({ type: "public", pkce: { required: true, allowPlain: false }, firstParty: false, loopbackRedirectAnyPort: true, selfRegistered: "registration" });
  });

  it("RFC 7591 §2: with confidential clients allowed, the omitted method is the RFC's default client_secret_basic", () => {
    expect(parseClientMetadata(minimal, CONFIDENTIAL_ALLOWED, "registration").token_endpoint_auth_method).toBe("client_secret_basic");
  });

  it("RFC 7591 §2: a requested scope is narrowed to the policy's scopes", () => {
    expect(parseClientMetadata({ ...minimal, scope: "write admin" }, PUBLIC_ONLY, "registration").scope).toBe("write");
  });

  it("RFC 7591 §2: metadata the server does not understand is ignored", () => {
    expect(parseClientMetadata({ ...minimal, "client_name#fr": "x", unknown_thing: { a: 1 } }, PUBLIC_ONLY, "registration")).not.toHaveProperty("unknown_thing");
  });

  it.each<[string, unknown, "invalid_redirect_uri" | "invalid_client_metadata"]>([
    ["RFC 7591 §3.2.2: no redirect_uris", {}, "invalid_redirect_uri"],
    ["RFC 7591 §3.2.2: an empty redirect_uris", { redirect_uris: [] }, "invalid_redirect_uri"],
    ["RFC 7591 §3.2.2: a redirect URI with a fragment", { redirect_uris: ["https://a.example/cb#x"] }, "invalid_redirect_uri"],
    ["RFC 7591 §3.2.2: an http redirect URI off loopback", { redirect_uris: ["http://a.example/cb"] }, "invalid_redirect_uri"],
    ["RFC 7591 §3.2.2: a redirect URI that is not a string", { redirect_uris: [42] }, "invalid_redirect_uri"],
    ["RFC 7591 §3.2.2: not an object", "redirect_uris", "invalid_client_metadata"],
    ["RFC 7591 §3.2.2: a confidential method where only public clients may register", { ...minimal, token_endpoint_auth_method: "client_secret_basic" }, "invalid_client_metadata"],
    ["RFC 7591 §3.2.2: an unsupported auth method", { ...minimal, token_endpoint_auth_method: "tls_client_auth" }, "invalid_client_metadata"],
    ["RFC 7591 §2.1: grant types without the code grant", { ...minimal, grant_types: ["refresh_token"] }, "invalid_client_metadata"],
    ["RFC 7591 §2: an unsupported grant type", { ...minimal, grant_types: ["authorization_code", "implicit"] }, "invalid_client_metadata"],
    ["RFC 7591 §2: response type token", { ...minimal, response_types: ["token"] }, "invalid_client_metadata"],
    ["RFC 7591 §2: a logo_uri that is not https", { ...minimal, logo_uri: "http://a.example/logo.png" }, "invalid_client_metadata"],
    ["a client_name with control characters", { ...minimal, client_name: "Evil\u202eApp" }, "invalid_client_metadata"],
    ["RFC 7591 §2: a scope that is not a string", { ...minimal, scope: ["read"] }, "invalid_client_metadata"],
  ])("%s", (_name, input, code) => {
    expect(codeOf(() => parseClientMetadata(input, PUBLIC_ONLY, "registration"))).toBe(code);
  });

  it("CIMD §4.1: a metadata document is always a public client and may hold no secret", () => {
    expect(parseClientMetadata(minimal, CONFIDENTIAL_ALLOWED, "metadata-document").token_endpoint_auth_method).toBe("none");
    expect(codeOf(() => parseClientMetadata({ ...minimal, client_secret: "s" }, CONFIDENTIAL_ALLOWED, "metadata-document"))).toBe("invalid_client_metadata");
    expect(codeOf(() => parseClientMetadata({ ...minimal, token_endpoint_auth_method: "client_secret_post" }, CONFIDENTIAL_ALLOWED, "metadata-document"))).toBe("invalid_client_metadata");
  });

  it("property: any JSON value is either accepted with valid redirect URIs or refused with an RFC 7591 §3.2.2 code, never another error", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record({ redirect_uris: fc.array(fc.oneof(fc.webUrl({ withFragments: true, withQueryParameters: true }), fc.string()), { maxLength: 3 }), scope: fc.option(fc.string()), client_name: fc.option(fc.string()), token_endpoint_auth_method: fc.option(fc.constantFrom("none", "client_secret_basic", "private_key_jwt")) }, { requiredKeys: ["redirect_uris"] }),
        ),
        (input) => {
          try {
            const metadata = parseClientMetadata(input, PUBLIC_ONLY, "registration");
            for (const uri of metadata.redirect_uris) expect(checkSelfRegisteredRedirectUri(uri)).toBeUndefined();
            expect(metadata.token_endpoint_auth_method).toBe("none");
            for (const scope of metadata.scope.split(" ").filter(Boolean)) expect(PUBLIC_ONLY.scopes).toContain(scope);
          } catch (error) {
            expect(error).toBeInstanceOf(OAuthError);
            expect(["invalid_redirect_uri", "invalid_client_metadata"]).toContain((error as OAuthError).code);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("checkClientIdUrl (draft-ietf-oauth-client-id-metadata-document §3)", () => {
  it("accepts an https URL with a path", () => {
    expect(checkClientIdUrl("https://app.example/oauth/client.json")).toBeUndefined();
  });
  it.each([
    ["http", "http://app.example/client.json"],
    ["no path", "https://app.example/"],
    ["a fragment", "https://app.example/client.json#x"],
    ["a query", "https://app.example/client.json?v=1"],
    ["credentials", "https://u:p@app.example/client.json"],
    ["a dot segment", "https://app.example/a/../client.json"],
    ["an encoded dot segment", "https://app.example/a/%2e%2e/client.json"],
    ["an upper-case host (not the normal form)", "https://APP.example/client.json"],
    ["a default port (not the normal form)", "https://app.example:443/client.json"],
  ])("refuses %s", (_name, url) => {
    expect(checkClientIdUrl(url)).toBeTypeOf("string");
  });
});
