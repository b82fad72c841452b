import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, basic, failureOf, issueTokens, startTestAuthz, type TestAuthz } from "../support/authz.js";

let t: TestAuthz;
let other: TestAuthz;
beforeAll(async () => {
  const keyPrefix = `watch-${Date.now()}:`;
  t = await startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix });
  // A second replica: same Redis, same key prefix, same keys.
  other = await startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix });
});
afterAll(async () => {
  await t.close();
  await other.close();
});

describe("WatchRevocations", () => {
  it("streams revocations made through any replica sharing the Redis", async () => {
    const stream = t.authz.watchRevocations({}, t.asGateway)[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value?.event).toEqual({ case: "subscribed", value: expect.objectContaining({ heartbeatInterval: 5n }) });

    const tokens = await issueTokens(other);
    await other.authz.revoke({ token: tokens.accessToken }, basic("web", SECRETS.web));
    const jtiEvent = await stream.next();
    expect(jtiEvent.value?.event).toMatchObject({ case: "revocation", value: { target: { case: "jti", value: decodeJwt(tokens.accessToken).jti } } });

    await other.authz.revoke({ token: tokens.refreshToken }, basic("web", SECRETS.web));
    const grantEvent = await stream.next();
    expect(grantEvent.value?.event).toMatchObject({
      case: "revocation",
      value: { target: { case: "grantId", value: decodeJwt(tokens.accessToken).gid } },
    });
    await stream.return?.();
  });

  it("the gateway, or a client that may introspect any token, may subscribe; nobody else", async () => {
    const first = async (options?: { headers: Record<string, string> }) => {
      for await (const event of t.authz.watchRevocations({}, options)) return event.event.case;
    };
    expect((await failureOf(first())).code).toBe(Code.Unauthenticated);
    expect((await failureOf(first(basic("resource-server", "wrong")))).code).toBe(Code.Unauthenticated);
    expect((await failureOf(first(basic("web", SECRETS.web)))).oauth?.error).toBe("unauthorized_client");
    // A resource server's guard needs no gateway credential for this.
    expect(await first(basic("resource-server", SECRETS.resourceServer))).toBe("subscribed");
  });
});
