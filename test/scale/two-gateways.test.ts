import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, WEB_REDIRECT, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { UserAgent, authorizeThroughGateway, signIn } from "../support/gateway-oauth-flow.js";
import { startGuardGateway, type GuardGateway } from "../integration/guard-fixtures.js";

/** Two authz replicas and two gateways, each gateway on its own replica, all on one Redis. */
let replicas: TestAuthz[];
let gateways: GuardGateway[];
beforeAll(async () => {
  const keyPrefix = `two-gateways-${Date.now()}:`;
  replicas = await Promise.all([0, 1].map(() => startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix })));
  gateways = await Promise.all(
    replicas.map((replica) => startGuardGateway({ authzUrl: replica.running.url, redisUrl: inject("redisUrl"), patch: () => {} })),
  );
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(replicas.map((r) => r.close()));
});

const token = (gateway: GuardGateway, form: Record<string, string>) =>
  fetch(`${gateway.url}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`web:${SECRETS.web}`).toString("base64")}` },
    body: new URLSearchParams(form).toString(),
  });

describe("two gateways, two authz replicas, one Redis", () => {
  it("a code obtained through one gateway is redeemed through the other, once", async () => {
    const [a, b] = gateways as [GuardGateway, GuardGateway];
    const browser = new UserAgent(a.url);
    await signIn(browser);
    const pkce = pkcePair();
    const { location } = await authorizeThroughGateway(browser, {
      response_type: "code",
      client_id: "web",
      redirect_uri: WEB_REDIRECT,
      scope: "read",
      state: "s1",
      code_challenge: pkce.challenge,
      code_challenge_method: "S256",
    });
    const code = location.searchParams.get("code")!;
    const form = { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: pkce.verifier };

    const redeemed = await token(b, form);
    expect(redeemed.status).toBe(200);
    expect(await redeemed.json()).toMatchObject({ token_type: "Bearer", scope: "read" });
    const replayed = await token(a, form);
    expect(replayed.status).toBe(400);
    expect(await replayed.json()).toMatchObject({ error: "invalid_grant" });
  });

  it("a browser signed in at one gateway is signed in at the other: sessions live in the store", async () => {
    const [a, b] = gateways as [GuardGateway, GuardGateway];
    const browser = new UserAgent(a.url);
    await signIn(browser);
    const atB = new UserAgent(b.url);
    for (const [name, value] of browser.cookies) atB.cookies.set(name, value);
    const response = await atB.get(
      `/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, scope: "read write", code_challenge: pkcePair().challenge, code_challenge_method: "S256" })}`,
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("wants to access your account");
  });
});
