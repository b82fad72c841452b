import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DEFAULT_OVERRIDE_HEADERS, parseGatewayConfig, type GatewayConfig } from "../../gateway/config.js";
import { configErrorOf } from "../support/config-error-of.js";

/** The guard's configuration fields of issue 10: routes[].audience and gateway.guard.overrideHeaders. */

const ENV = { SECRET: "gateway-client-secret" };

function file(guard: Record<string, unknown> = {}, route: Record<string, unknown> = {}): string {
  return stringify({
    issuer: "https://gateway.example",
    gateway: { authz: { clientId: "gateway", clientSecret: { env: "SECRET" } }, guard },
    routes: [{ name: "notes", path: "/api/notes/**", scopes: ["read"], upstream: "http://127.0.0.1:3001", ...route }],
  });
}

const parse = (text: string): GatewayConfig => parseGatewayConfig(text, ENV);
function problemsOf(text: string): readonly string[] {
  return configErrorOf(() => parse(text)).problems;
}

describe("routes[].audience (RFC 9068 §4)", () => {
  it.each([
    [undefined, []],
    ["https://notes.example", ["https://notes.example"]],
    [["https://notes.example", "https://api.example"], ["https://notes.example", "https://api.example"]],
  ])("%j is read as %j (empty: any audience)", (audience, expected) => {
    expect(parse(file({}, audience === undefined ? {} : { audience })).routes[0]!.audience).toEqual(expected);
  });

  it("an empty audience or an empty list is refused, at its path", () => {
    expect(problemsOf(file({}, { audience: "" }))[0]).toMatch(/^routes\[0\]\.audience/);
    expect(problemsOf(file({}, { audience: [] }))[0]).toMatch(/^routes\[0\]\.audience/);
  });

  it("routes from scopes[].routes accept any audience", () => {
    const text = stringify({
      issuer: "https://gateway.example",
      gateway: { authz: { clientId: "gateway", clientSecret: { env: "SECRET" } }, guard: { defaultUpstream: "http://127.0.0.1:3001" } },
      scopes: [{ name: "read", routes: ["GET /docs/**"] }],
    });
    expect(parse(text).routes[0]!.audience).toEqual([]);
  });
});

describe("gateway.guard.overrideHeaders", () => {
  it("is on by default, with the nine fields of issue 10", () => {
    expect(parse(file()).guard.overrideHeaders).toEqual(DEFAULT_OVERRIDE_HEADERS);
    expect(DEFAULT_OVERRIDE_HEADERS).toHaveLength(9);
  });

  it("is configurable (names lower-cased), and [] turns it off", () => {
    expect(parse(file({ overrideHeaders: ["X-Original-URL", "X-Custom-Path"] })).guard.overrideHeaders).toEqual(["x-original-url", "x-custom-path"]);
    expect(parse(file({ overrideHeaders: [] })).guard.overrideHeaders).toEqual([]);
  });

  it("refuses what is not a header field name, at its path", () => {
    expect(problemsOf(file({ overrideHeaders: ["X Original"] }))[0]).toMatch(/^gateway\.guard\.overrideHeaders\[0\]: must be a header field name/);
  });
});

describe("issue 12: routes[].groups and groupMode", () => {
  it("are read (groupMode any by default); a route without groups requires none", () => {
    expect(parse(file({}, { groups: ["staff", "ops"] })).routes[0]).toMatchObject({ groups: ["staff", "ops"], groupMode: "any" });
    expect(parse(file({}, { groups: ["staff"], groupMode: "all" })).routes[0]).toMatchObject({ groups: ["staff"], groupMode: "all" });
    expect(parse(file()).routes[0]).toMatchObject({ groups: [], groupMode: "any" });
  });

  it.each([
    [{ groups: [] }, /^routes\[0\]\.groups: list at least one group/],
    [{ groups: ["Staff"] }, /^routes\[0\]\.groups\[0\]: must be a group slug/],
    [{ groups: ["staff", "staff"] }, /^routes\[0\]\.groups: a group is listed twice/],
    [{ groups: ["staff"], groupMode: "some" }, /^routes\[0\]\.groupMode/],
  ])("%j is refused at its path", (route, problem) => {
    expect(problemsOf(file({}, route))[0]).toMatch(problem);
  });
});
