import { describe, expect, it } from "vitest";
import { buildAuthorizationResponseUrl } from "../../services/authz/oauth/authorization-response.js";

type Params = Record<string, string | number | undefined>;

describe("buildAuthorizationResponseUrl", () => {
  it.each<[string, string, "query" | "fragment", Params, string]>([
    ["RFC 6749 §4.1.2: the code flow answers in the query", "https://client.example/cb", "query", { code: "SplxlOBeZQQYbYS6WxSbIA", state: "xyz" }, "https://client.example/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz"],
    ["RFC 6749 §3.1.2: the redirect URI's own query is retained, the response appended", "https://client.example/cb?tenant=a", "query", { code: "abc" }, "https://client.example/cb?tenant=a&code=abc"],
    ["RFC 6749 §3.1.2: a redirect URI ending in '?' gets no second separator", "https://client.example/cb?", "query", { code: "abc" }, "https://client.example/cb?code=abc"],
    ["RFC 6749 §3.1.2: a redirect URI ending in '&' gets no second separator", "https://client.example/cb?tenant=a&", "query", { code: "abc" }, "https://client.example/cb?tenant=a&code=abc"],
    ["RFC 6749 §4.2.2: the implicit flow answers in the fragment", "https://client.example/cb", "fragment", { access_token: "2YotnFZFEjr1zCsicMWpAA", token_type: "Bearer", expires_in: 3600, state: "xyz" }, "https://client.example/cb#access_token=2YotnFZFEjr1zCsicMWpAA&token_type=Bearer&expires_in=3600&state=xyz"],
    ["RFC 6749 §4.2.2: in fragment mode the redirect URI's query stays where it was", "https://client.example/cb?tenant=a", "fragment", { access_token: "t" }, "https://client.example/cb?tenant=a#access_token=t"],
    ["RFC 6749 §4.1.2.1: an error response in the query", "https://client.example/cb", "query", { error: "access_denied", error_description: "the user said no", state: "xyz" }, "https://client.example/cb?error=access_denied&error_description=the+user+said+no&state=xyz"],
    ["RFC 6749 §4.1.2: an empty state is left out", "https://client.example/cb", "query", { code: "abc", state: "" }, "https://client.example/cb?code=abc"],
    ["RFC 6749 §4.1.2: an undefined value is left out", "https://client.example/cb", "query", { code: "abc", state: undefined, iss: "https://as.example" }, "https://client.example/cb?code=abc&iss=https%3A%2F%2Fas.example"],
    ["RFC 6749 Appendix B: values are form-encoded", "https://client.example/cb", "query", { state: "a b&c=d/é+" }, "https://client.example/cb?state=a+b%26c%3Dd%2F%C3%A9%2B"],
    ["RFC 6749 Appendix B: values are form-encoded in the fragment too", "https://client.example/cb", "fragment", { state: "a#b c" }, "https://client.example/cb#state=a%23b+c"],
    ["RFC 6749 §4.2.2: a number is written in decimal", "https://client.example/cb", "fragment", { expires_in: 0 }, "https://client.example/cb#expires_in=0"],
    ["RFC 8252 §7.1: a private-use scheme redirect URI", "com.example.app:/oauth2redirect", "query", { code: "abc" }, "com.example.app:/oauth2redirect?code=abc"],
  ])("%s", (_name, redirectUri, mode, params, expected) => {
    expect(buildAuthorizationResponseUrl(redirectUri, mode, params)).toBe(expected);
  });

  it.each<[string, string]>([
    ["a state that tries to add a second code", "x&code=evil"],
    ["a state that tries to start a fragment", "x#access_token=evil"],
    ["a state with every reserved character", ":/?#[]@!$&'()*+,;=% \"<>\\^`{|}"],
    ["a state with non-ASCII and emoji", "été 🔑"],
  ])("RFC 6749 §4.1.2: %s reaches the client verbatim and adds no parameter", (_name, state) => {
    const url = new URL(buildAuthorizationResponseUrl("https://client.example/cb?tenant=a", "query", { code: "abc", state }));
    expect(url.origin + url.pathname).toBe("https://client.example/cb");
    expect(url.hash).toBe("");
    expect([...url.searchParams]).toEqual([
      ["tenant", "a"],
      ["code", "abc"],
      ["state", state],
    ]);
  });

  it("RFC 6749 §4.2.2: a fragment response parses back to the same parameters", () => {
    const params = { access_token: "a.b.c", token_type: "Bearer", expires_in: 600, scope: "read write", state: "s&t=u" };
    const url = new URL(buildAuthorizationResponseUrl("https://client.example/cb", "fragment", params));
    expect(url.search).toBe("");
    expect(Object.fromEntries(new URLSearchParams(url.hash.slice(1)))).toEqual({ ...params, expires_in: "600" });
  });
});
