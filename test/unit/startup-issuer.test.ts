import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkIssuer } from "../../startup/issuer.js";

const NOT_HTTPS = "issuer: must use https (RFC 8414 §2); set requireHttps: false for local development";
const QUERY_OR_FRAGMENT = "issuer: must have no query or fragment (RFC 8414 §2)";

describe("checkIssuer: RFC 8414 §2", () => {
  it.each<[string, string, boolean, string[]]>([
    ["an https URL", "https://as.example", true, []],
    ["an https URL with a path (a tenant)", "https://as.example/tenant-a", true, []],
    ["an http URL where the configuration allows development", "http://localhost:8080", false, []],
    ["an http URL where https is required", "http://as.example", true, [NOT_HTTPS]],
    ["another scheme, even in development", "ftp://as.example", false, [NOT_HTTPS]],
    ["a query", "https://as.example?tenant=a", true, [QUERY_OR_FRAGMENT]],
    ["an empty query", "https://as.example/?", true, [QUERY_OR_FRAGMENT]],
    ["a fragment", "https://as.example#a", true, [QUERY_OR_FRAGMENT]],
    ["an empty fragment", "https://as.example/#", true, [QUERY_OR_FRAGMENT]],
    ["http with a query where https is required: both problems", "http://as.example?x=1", true, [QUERY_OR_FRAGMENT, NOT_HTTPS]],
    ["not a URL", "as.example", true, ["issuer: must be an absolute URL"]],
    ["empty", "", false, ["issuer: must be an absolute URL"]],
  ])("%s", (_name, issuer, requireHttps, problems) => {
    expect(checkIssuer(issuer, requireHttps)).toEqual(problems);
  });

  it("any https URL without query or fragment is accepted, and adding either is refused (fast-check)", () => {
    const host = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){1,2}$/);
    const port = fc.option(fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`), { nil: "" });
    const path = fc.array(fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/), { maxLength: 4 }).map((segments) => segments.map((s) => `/${s}`).join(""));
    fc.assert(
      fc.property(host, port, path, fc.constantFrom("?", "?a=b", "#", "#x", "/?", "/#"), (name, p, rest, suffix) => {
        const issuer = `https://${name}${p}${rest}`;
        expect(checkIssuer(issuer, true)).toEqual([]);
        expect(checkIssuer(issuer + suffix, true)).toEqual([QUERY_OR_FRAGMENT]);
      }),
    );
  });

  it("every problem is at the path issuer (fast-check)", () => {
    fc.assert(
      fc.property(fc.string(), fc.boolean(), (issuer, requireHttps) => {
        for (const problem of checkIssuer(issuer, requireHttps)) expect(problem).toMatch(/^issuer: /);
      }),
    );
  });
});
