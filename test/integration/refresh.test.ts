import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, basic, failureOf, issueTokens, startTestAuthz, type TestAuthz } from "../support/authz.js";

let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(() => t.close());

const web = () => basic("web", SECRETS.web);
const grace = () => basic("grace", SECRETS.grace);
const asResourceServer = () => basic("resource-server", SECRETS.resourceServer);
const isActive = async (token: string) => (await t.authz.introspect({ token }, asResourceServer())).active;

describe("Refresh: RFC 6749 §6 with rotation (RFC 9700 §4.14.2)", () => {
  it("every use returns a new refresh token and a new access token of the same grant", async () => {
    const first = await issueTokens(t);
    const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, web());
    expect(second!.refreshToken).not.toBe(first.refreshToken);
    expect(second!.accessToken).not.toBe(first.accessToken);
    expect(second!.scope).toBe("read write");
    expect(decodeJwt(second!.accessToken).gid).toBe(decodeJwt(first.accessToken).gid);
    expect(await isActive(first.refreshToken)).toBe(false);
    expect(await isActive(second!.refreshToken)).toBe(true);
    const { token: third } = await t.authz.refresh({ refreshToken: second!.refreshToken }, web());
    expect(third!.refreshToken).not.toBe(second!.refreshToken);
  });

  it("scope may narrow for one access token without shrinking the grant (RFC 6749 §6)", async () => {
    const first = await issueTokens(t);
    const { token: narrow } = await t.authz.refresh({ refreshToken: first.refreshToken, scope: "read" }, web());
    expect(narrow!.scope).toBe("read");
    expect(decodeJwt(narrow!.accessToken).scope).toBe("read");
    const { token: full } = await t.authz.refresh({ refreshToken: narrow!.refreshToken }, web());
    expect(full!.scope).toBe("read write");
  });

  it("scope may never widen: invalid_scope, and the token stays usable", async () => {
    const first = await issueTokens(t, { scope: "read" });
    const failure = await failureOf(t.authz.refresh({ refreshToken: first.refreshToken, scope: "read write" }, web()));
    expect(failure.oauth?.error).toBe("invalid_scope");
    const { token } = await t.authz.refresh({ refreshToken: first.refreshToken }, web());
    expect(token!.scope).toBe("read");
  });

  it("the token is bound to its client: another client gets invalid_grant", async () => {
    const first = await issueTokens(t);
    const failure = await failureOf(t.authz.refresh({ refreshToken: first.refreshToken }, grace()));
    expect(failure.oauth?.error).toBe("invalid_grant");
    // ...and it did not burn the token for its owner.
    await t.authz.refresh({ refreshToken: first.refreshToken }, web());
  });

  it.each([
    ["malformed", "not-a-token"],
    ["unknown family", `${"A".repeat(22)}.${"B".repeat(43)}`],
  ])("a %s refresh token is invalid_grant", async (_name, refreshToken) => {
    const failure = await failureOf(t.authz.refresh({ refreshToken }, web()));
    expect(failure.oauth?.error).toBe("invalid_grant");
  });

  it("a forged token naming a real family is invalid_grant and revokes nothing", async () => {
    const first = await issueTokens(t);
    const grantId = first.refreshToken.split(".")[0]!;
    const failure = await failureOf(t.authz.refresh({ refreshToken: `${grantId}.${"F".repeat(43)}` }, web()));
    expect(failure.oauth?.error).toBe("invalid_grant");
    expect(await isActive(first.refreshToken)).toBe(true);
  });

  it("a missing refresh_token is invalid_request", async () => {
    expect((await failureOf(t.authz.refresh({}, web()))).oauth?.error).toBe("invalid_request");
  });

  it("a client without the refresh_token grant is unauthorized_client", async () => {
    const first = await issueTokens(t);
    const failure = await failureOf(t.authz.refresh({ refreshToken: first.refreshToken }, basic("legacy", SECRETS.legacy)));
    expect(failure.oauth?.error).toBe("unauthorized_client");
  });

  it("RFC 9700 §4.14.2: a rotated-out token presented again revokes the whole family", async () => {
    const first = await issueTokens(t);
    const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, web());
    const reuse = await failureOf(t.authz.refresh({ refreshToken: first.refreshToken }, web()));
    expect(reuse.oauth?.error).toBe("invalid_grant");
    // The legitimate holder's newer tokens die with the family.
    expect((await failureOf(t.authz.refresh({ refreshToken: second!.refreshToken }, web()))).oauth?.error).toBe("invalid_grant");
    expect(await isActive(second!.accessToken)).toBe(false);
    expect(await isActive(first.accessToken)).toBe(false);
  });

  it("two concurrent refreshes with one token: exactly one rotation; with no grace the loser revokes the family", async () => {
    const first = await issueTokens(t);
    const results = await Promise.allSettled([
      t.authz.refresh({ refreshToken: first.refreshToken }, web()),
      t.authz.refresh({ refreshToken: first.refreshToken }, web()),
    ]);
    const winners = results.filter((r) => r.status === "fulfilled");
    expect(winners).toHaveLength(1);
    const loser = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect((await failureOf(Promise.reject(loser.reason))).oauth?.error).toBe("invalid_grant");
    const winner = (winners[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof t.authz.refresh>>>).value;
    expect(await isActive(winner.token!.refreshToken)).toBe(false);
  });

  describe("grace window (per client; 5 s for the test client `grace`)", () => {
    it("re-presenting the just-rotated token within the window returns the same new pair", async () => {
      const first = await issueTokens(t, { clientId: "grace" });
      const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, grace());
      const { token: retry } = await t.authz.refresh({ refreshToken: first.refreshToken }, grace());
      expect(retry!.refreshToken).toBe(second!.refreshToken);
      expect(retry!.accessToken).toBe(second!.accessToken);
      expect(await isActive(second!.refreshToken)).toBe(true);
    });

    it("concurrent refreshes all get the same new pair and the family survives", async () => {
      const first = await issueTokens(t, { clientId: "grace" });
      const results = await Promise.all(Array.from({ length: 10 }, () => t.authz.refresh({ refreshToken: first.refreshToken }, grace())));
      expect(new Set(results.map((r) => r.token!.refreshToken)).size).toBe(1);
      expect(await isActive(results[0]!.token!.refreshToken)).toBe(true);
    });

    it("a token two rotations old is still reuse and revokes the family", async () => {
      const first = await issueTokens(t, { clientId: "grace" });
      const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, grace());
      const { token: third } = await t.authz.refresh({ refreshToken: second!.refreshToken }, grace());
      const reuse = await failureOf(t.authz.refresh({ refreshToken: first.refreshToken }, grace()));
      expect(reuse.oauth?.error).toBe("invalid_grant");
      expect(await isActive(third!.refreshToken)).toBe(false);
    });
  });
});
