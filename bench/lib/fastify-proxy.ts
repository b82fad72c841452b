/**
 * Reference phase (f) of bench:guard: fastify and the gateway's own proxy
 * plugin (keep-alive, streaming, hop-by-hop handling), with no check at all:
 * what the framework and the proxying cost before the guard adds anything.
 * PORT and TARGET from the environment.
 */
import Fastify from "fastify";
import { proxy } from "../../gateway/plugins/proxy.js";

const app = Fastify({ logger: false });
await app.register(proxy, { timeoutMs: 30_000 });
await app.register(async (scope) => {
  const target = scope.upstreamProxy.target(process.env.TARGET!);
  scope.route({
    method: scope.supportedMethods,
    url: "*",
    // The caller's fields as they came (hop-by-hop ones included): no check, no rewrite.
    onRequest: (request, reply, _done) =>
      scope.upstreamProxy.web(request.raw, reply.raw, target, { path: request.raw.url ?? "/", headers: request.raw.rawHeaders }, () => reply.code(502).send()),
    handler: async () => undefined,
  });
});
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0) });
process.stdout.write(`fastify proxy listening on ${(app.server.address() as { port: number }).port}\n`);
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
