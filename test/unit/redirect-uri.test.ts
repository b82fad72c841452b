import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OAuthError } from "../../services/authz/oauth/errors.js";
import { checkRegisteredRedirectUri, matchRedirectUri } from "../../services/authz/oauth/redirect-uri.js";

const WEB = "https://client.example/cb";
const WEB_WITH_QUERY = "https://client.example/cb?tenant=a";
const LOOPBACK = "http://127.0.0.1:8080/cb";
const NATIVE = "com.example.app:/oauth2redirect";

/** An invalid_request that carries no redirect URL: an unverified redirect URI is never redirected to (RFC 6749 §4.1.2.1). */
const unredirectableInvalidRequest = expect.objectContaining({ name: "OAuthError", code: "invalid_request", redirectUrl: undefined });

describe("matchRedirectUri", () => {
  it.each<[string, readonly string[], string, string]>([
    ["RFC 6749 §3.1.2.3: an exactly registered URI is returned", [WEB], WEB, WEB],
    ["RFC 6749 §3.1.2.3: with several registered, the requested one is returned", [WEB, LOOPBACK, NATIVE], LOOPBACK, LOOPBACK],
    ["RFC 6749 §3.1.2.3: a registered private-use scheme URI matches exactly", [WEB, NATIVE], NATIVE, NATIVE],
    ["RFC 6749 §3.1.2: a registered URI with a query matches exactly", [WEB_WITH_QUERY], WEB_WITH_QUERY, WEB_WITH_QUERY],
    ["RFC 6749 §3.1.2.3: an omitted redirect_uri defaults to the only registered one", [WEB], "", WEB],
  ])("%s", (_name, registered, requested, expected) => {
    expect(matchRedirectUri(registered, requested)).toBe(expected);
  });

  it.each<[string, readonly string[], string]>([
    ["RFC 6749 §3.1.2.3: an omitted redirect_uri is required when several are registered", [WEB, LOOPBACK], ""],
    ["RFC 6749 §3.1.2.3: an omitted redirect_uri is refused when none is registered", [], ""],
    ["RFC 9700 §4.1.3: any URI is refused when none is registered", [], WEB],
    ["RFC 9700 §4.1.3: an added trailing slash does not match", [WEB], `${WEB}/`],
    ["RFC 9700 §4.1.3: a removed trailing slash does not match", ["https://client.example/cb/"], WEB],
    ["RFC 9700 §4.1.3: a different host case does not match", [WEB], "https://CLIENT.example/cb"],
    ["RFC 9700 §4.1.3: a different scheme case does not match", [WEB], "HTTPS://client.example/cb"],
    ["RFC 9700 §4.1.3: a different path case does not match", [WEB], "https://client.example/CB"],
    ["RFC 9700 §4.1.3: an added query does not match", [WEB], `${WEB}?x=1`],
    ["RFC 9700 §4.1.3: an empty query does not match", [WEB], `${WEB}?`],
    ["RFC 9700 §4.1.3: a changed registered query does not match", [WEB_WITH_QUERY], "https://client.example/cb?tenant=b"],
    ["RFC 9700 §4.1.3: a dropped registered query does not match", [WEB_WITH_QUERY], WEB],
    ["RFC 9700 §4.1.3: an added fragment does not match", [WEB], `${WEB}#x`],
    ["RFC 9700 §4.1.3: an explicit default port does not match", [WEB], "https://client.example:443/cb"],
    ["RFC 9700 §4.1.3: a different port does not match", [WEB], "https://client.example:8443/cb"],
    ["RFC 9700 §4.1.3: no loopback port leniency: another port on 127.0.0.1 does not match", [LOOPBACK], "http://127.0.0.1:9999/cb"],
    ["RFC 9700 §4.1.3: localhost does not match a registered 127.0.0.1", [LOOPBACK], "http://localhost:8080/cb"],
    ["RFC 9700 §4.1.3: http does not match a registered https", [WEB], "http://client.example/cb"],
    ["RFC 9700 §4.1.3: a registered URI is not a prefix", [WEB], `${WEB}/../../evil`],
    ["RFC 9700 §4.1.3: a longer path under the registered one does not match", [WEB], `${WEB}/more`],
    ["RFC 9700 §4.1.3: a percent-encoded form of the same path does not match", [WEB], "https://client.example/%63b"],
    ["RFC 9700 §4.1.3: a subdomain of the registered host does not match", [WEB], "https://client.example.evil.example/cb"],
    ["RFC 9700 §4.1.3: the registered host as userinfo does not match", [WEB], "https://client.example@evil.example/cb"],
    ["RFC 9700 §4.1.3: surrounding whitespace does not match", [WEB], ` ${WEB}`],
    ["RFC 9700 §4.1.3: a URI registered for another purpose is not matched by a near miss", [WEB, NATIVE], "com.example.app:/oauth2redirect/"],
  ])("%s", (_name, registered, requested) => {
    expect(() => matchRedirectUri(registered, requested)).toThrow(unredirectableInvalidRequest);
  });

  const registeredArb = fc.uniqueArray(fc.webUrl({ withQueryParameters: true }), { minLength: 1, maxLength: 4 });
  /** Strings near the registered ones as well as arbitrary ones. */
  const candidateArb = (registered: readonly string[]) =>
    fc.oneof(
      fc.string(),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.tuple(fc.constantFrom(...registered), fc.string({ minLength: 1 })).map(([uri, suffix]) => uri + suffix),
      fc.constantFrom(...registered).map((uri) => uri.toUpperCase()),
      fc.constantFrom(...registered).map((uri) => uri.slice(0, -1)),
    );

  it("RFC 6749 §4.1.2.1: any requested URI not registered is invalid_request and never redirected to", () => {
    fc.assert(
      fc.property(
        registeredArb.chain((registered) => fc.tuple(fc.constant(registered), candidateArb(registered))),
        ([registered, requested]) => {
          // An omitted redirect_uri with exactly one registered is the default, not a mismatch.
          fc.pre(!registered.includes(requested) && !(requested === "" && registered.length === 1));
          let caught: unknown;
          try {
            matchRedirectUri(registered, requested);
          } catch (error) {
            caught = error;
          }
          expect(caught).toBeInstanceOf(OAuthError);
          expect(caught).toEqual(unredirectableInvalidRequest);
        },
      ),
    );
  });

  it("RFC 6749 §3.1.2.3: any registered URI requested exactly is returned unchanged", () => {
    fc.assert(
      fc.property(
        registeredArb.chain((registered) => fc.tuple(fc.constant(registered), fc.constantFrom(...registered))),
        ([registered, requested]) => {
          expect(matchRedirectUri(registered, requested)).toBe(requested);
        },
      ),
    );
  });
});

describe("checkRegisteredRedirectUri", () => {
  it.each<[string, string, boolean]>([
    ["RFC 6749 §3.1.2: an https URI is acceptable", "https://client.example/cb", true],
    ["RFC 6749 §3.1.2: an https URI with a query is acceptable", "https://client.example/cb?tenant=a", true],
    ["RFC 8252 §7.3: http on 127.0.0.1 with a port is acceptable", "http://127.0.0.1:8080/cb", true],
    ["RFC 8252 §7.3: http on another 127/8 address is acceptable", "http://127.10.20.30/cb", true],
    ["RFC 8252 §7.3: http on [::1] is acceptable", "http://[::1]:8080/cb", true],
    ["RFC 8252 §8.3: http on localhost is acceptable", "http://localhost:3000/callback", true],
    ["RFC 8252 §7.1: a reverse-domain private-use scheme is acceptable", "com.example.app:/oauth2redirect", true],
    ["RFC 8252 §7.1: a reverse-domain private-use scheme with an authority is acceptable", "com.example.app://callback", true],
    ["requireHttps off: plain http on any host is acceptable", "http://client.example/cb", false],
    ["requireHttps off: a single-word custom scheme is acceptable", "myapp:/cb", false],
  ])("%s", (_name, uri, requireHttps) => {
    expect(checkRegisteredRedirectUri(uri, requireHttps)).toBeUndefined();
  });

  it.each<[string, string, boolean, RegExp]>([
    ["RFC 6749 §3.1.2: a fragment is refused", "https://client.example/cb#section", true, /fragment/],
    ["RFC 6749 §3.1.2: an empty fragment is refused", "https://client.example/cb#", true, /fragment/],
    ["RFC 6749 §3.1.2: a fragment is refused even with requireHttps off", "http://client.example/cb#x", false, /fragment/],
    ["RFC 6749 §3.1.2: a relative URI is refused", "/cb", true, /absolute/],
    ["RFC 6749 §3.1.2: a scheme-relative URI is refused", "//client.example/cb", true, /absolute/],
    ["RFC 6749 §3.1.2: an empty string is refused", "", false, /absolute/],
    ["RFC 6749 §3.1.2: a bare host is refused", "client.example/cb", true, /absolute/],
    ["RFC 9700 §4.1: a javascript: URI is refused", "javascript:alert(1)", true, /javascript:/],
    ["RFC 9700 §4.1: a javascript: URI is refused whatever its case", "JavaScript:alert(1)", true, /javascript:/],
    ["RFC 9700 §4.1: a javascript: URI is refused even with requireHttps off", "javascript:alert(1)", false, /javascript:/],
    ["RFC 9700 §4.1: a data: URI is refused", "data:text/html,<script>alert(1)</script>", false, /data:/],
    ["RFC 8252 §7.3: http on a non-loopback host is refused with requireHttps", "http://client.example/cb", true, /https/],
    ["RFC 8252 §7.3: a host that starts like a loopback address is not loopback", "http://127.0.0.1.evil.example/cb", true, /https/],
    ["RFC 8252 §7.3: a host that starts with localhost is not loopback", "http://localhost.evil.example/cb", true, /https/],
    ["RFC 8252 §7.3: a private address is not loopback", "http://10.0.0.1/cb", true, /https/],
    ["RFC 8252 §7.1: a private-use scheme without a dot is refused with requireHttps", "myapp:/cb", true, /private-use/],
    ["RFC 8252 §7.1: a file: URI is refused with requireHttps", "file:///tmp/cb", true, /https/],
  ])("%s", (_name, uri, requireHttps, problem) => {
    expect(checkRegisteredRedirectUri(uri, requireHttps)).toMatch(problem);
  });
});
