import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import Provider from "oidc-provider";
import { runTs } from "../../test/support/process.js";
import { freePort } from "../../test/support/redis-server.js";
import { waitForReady, type Contender, type ContenderSetup, type RunningContender } from "./contender.js";
import { runLoad } from "./load.js";
import { BENCH_SUBJECT } from "./stack-config.js";
import { createOidcProviderConfiguration, type OidcProviderBenchOptions } from "./oidc-provider-config.js";
import { createOidcProviderRedisAdapter } from "./oidc-provider-redis-adapter.js";

/**
 * node-oidc-provider 9 with its Redis adapter, in its own process
 * (lib/oidc-provider-main.ts, NODE_ENV=production, loaded through tsx: the
 * transpiling happens at start-up only).
 *
 * Codes are minted through the Provider API, as its authorization endpoint
 * would after login and consent: a Grant (the client, the account, scope
 * `read`) and an AuthorizationCode bound to it with the PKCE challenge and
 * redirect URI, saved by a second Provider instance in this process on the
 * same Redis, with the same configuration and key prefix. They are real
 * stored codes, redeemed by the server process like any other.
 */
export async function startOidcProvider(setup: ContenderSetup): Promise<RunningContender> {
  const port = await freePort();
  const prefix = `bench-oidc-${Date.now()}:`;
  const options: OidcProviderBenchOptions = {
    clientSecret: setup.secrets.web,
    redirectUri: setup.redirectUri,
    signingKeys: JSON.parse(setup.secrets.env.BENCH_SIGNING_KEYS!) as { keys: unknown[] },
    codeLifetimeSeconds: setup.codeLifetimeSeconds,
    cookieKey: randomBytes(32).toString("base64url"),
  };
  const server = runTs("bench/lib/oidc-provider-main.ts", {
    env: {
      NODE_ENV: "production",
      BENCH_OIDC_PORT: String(port),
      BENCH_OIDC_REDIS: setup.redisUrl,
      BENCH_OIDC_PREFIX: prefix,
      BENCH_OIDC_OPTIONS: JSON.stringify(options),
    },
    nodeArgs: setup.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${setup.profileDir}`],
  });
  const redis = new Redis(setup.redisUrl, { keyPrefix: prefix });
  const stop = async () => {
    await server.stop();
    await redis.quit().catch(() => redis.disconnect());
  };
  try {
    const issuer = `http://127.0.0.1:${port}`;
    await waitForReady(`${issuer}/.well-known/openid-configuration`, () => server.output());
    const minter = new Provider(issuer, createOidcProviderConfiguration(options, createOidcProviderRedisAdapter(redis)));
    const client = await minter.Client.find("web");
    if (client === undefined) throw new Error("oidc-provider does not know the client web");
    /** One grant and one code on it, as an approved authorization request leaves them. */
    const mintCode = async () => {
      const grant = new minter.Grant({ accountId: BENCH_SUBJECT, clientId: "web" });
      grant.addOIDCScope("read");
      const grantId = await grant.save();
      return new minter.AuthorizationCode({
        accountId: BENCH_SUBJECT,
        authTime: Math.floor(Date.now() / 1000),
        client,
        grantId,
        codeChallenge: setup.codeChallenge,
        codeChallengeMethod: "S256",
        redirectUri: setup.redirectUri,
        scope: "read",
      }).save();
    };
    return {
      tokenUrl: `${issuer}/token`,
      introspectUrl: `${issuer}/token/introspection`,
      processes: { "oidc-provider": server.child.pid },
      async mintCodes(count) {
        const codes: string[] = [];
        const minted = await runLoad("mint", { concurrency: 64, seconds: 120, stopWhen: () => codes.length >= count }, async () => void codes.push(await mintCode()));
        if (codes.length < count) throw new Error(`oidc-provider: minted ${codes.length} of ${count} codes; first error: ${minted.firstError}`);
        return codes.slice(0, count);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The peer of issue 16. */
export const oidcProviderPeer: Contender = {
  name: "node-oidc-provider 9",
  side: "peer",
  start: startOidcProvider,
};
