import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseGatewayConfig } from "../../gateway/config.js";
import { configErrorOf } from "../support/config-error-of.js";

/** gateway.guard.extAuthz: Envoy's ext_authz Check on a listener of its own, off unless set. */

const ENV = { SECRET: "gateway-client-secret" };
const file = (guard: Record<string, unknown> = {}, port = 8080) =>
  stringify({ issuer: "https://gateway.example", gateway: { port, authz: { clientId: "gateway", clientSecret: { env: "SECRET" } }, guard } });

function problemsOf(text: string): readonly string[] {
  return configErrorOf(() => parseGatewayConfig(text, ENV)).problems;
}

describe("gateway.guard.extAuthz", () => {
  it("is off unless set", () => {
    expect(parseGatewayConfig(file(), ENV).guard.extAuthz).toBeUndefined();
  });

  it("listens on loopback unless a host is named", () => {
    expect(parseGatewayConfig(file({ extAuthz: { port: 9191 } }), ENV).guard.extAuthz).toEqual({ host: "127.0.0.1", port: 9191 });
    expect(parseGatewayConfig(file({ extAuthz: { host: "0.0.0.0", port: 9191 } }), ENV).guard.extAuthz).toEqual({ host: "0.0.0.0", port: 9191 });
  });

  it.each([
    [{ extAuthz: {} }, /^gateway\.guard\.extAuthz\.port/],
    [{ extAuthz: { port: 70000 } }, /^gateway\.guard\.extAuthz\.port/],
    [{ extAuthz: { port: 9191, tls: true } }, /^gateway\.guard\.extAuthz/],
  ])("%j is refused at its path", (guard, problem) => {
    expect(problemsOf(file(guard))[0]).toMatch(problem);
  });

  it("may not share the gateway's own port (the Check has a listener of its own)", () => {
    expect(problemsOf(file({ extAuthz: { port: 8080 } }, 8080))).toEqual([expect.stringMatching(/^gateway\.guard\.extAuthz\.port: must differ/)]);
  });
});
