/**
 * node-oidc-provider 9 on Redis, as bench:peers runs it: its own process,
 * its Koa app on node:http, the ioredis adapter with atomic consume. Started
 * by lib/oidc-provider-contender.ts; reads its settings from the environment
 * (this is its composition root):
 *
 *   BENCH_OIDC_PORT      loopback port to listen on
 *   BENCH_OIDC_REDIS     Redis URL;  BENCH_OIDC_PREFIX  key prefix
 *   BENCH_OIDC_OPTIONS   JSON of OidcProviderBenchOptions
 */
import { createServer } from "node:http";
import { Redis } from "ioredis";
import Provider from "oidc-provider";
import { createOidcProviderConfiguration, type OidcProviderBenchOptions } from "./oidc-provider-config.js";
import { createOidcProviderRedisAdapter } from "./oidc-provider-redis-adapter.js";

const port = Number(process.env.BENCH_OIDC_PORT);
const redis = new Redis(process.env.BENCH_OIDC_REDIS!, { keyPrefix: process.env.BENCH_OIDC_PREFIX });
const options = JSON.parse(process.env.BENCH_OIDC_OPTIONS!) as OidcProviderBenchOptions;
const provider = new Provider(`http://127.0.0.1:${port}`, createOidcProviderConfiguration(options, createOidcProviderRedisAdapter(redis)));
const server = createServer(provider.callback());
server.listen(port, "127.0.0.1", () => process.stdout.write(`oidc-provider listening on ${port}\n`));

process.once("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => void redis.quit().finally(() => process.exit(0)));
});
