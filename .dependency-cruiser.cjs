/**
 * The dependency rules of gatehouse (README, "Layout"). `npm run lint:deps`
 * and .ci/run check them; a violation fails CI with the rule's name.
 *
 * - The protocol core (services/authz/oauth/) is pure: it declares the ports it
 *   needs (oauth/store.ts) and imports no transport, framework or Redis client.
 *   store/ implements those ports, never the other way round.
 * - The authz service and the gateway share only gen/ and contract/ (the
 *   contract: messages, and the metadata beside them) and startup/ (what both
 *   do at start-up); neither imports the other.
 * - Gateway plugins are wired by gateway/app.ts alone; what several plugins
 *   need lives outside plugins/.
 * - The guard's pipeline (gateway/guard/) is framework-free; pipeline.ts imports no node:http.
 * - http-proxy lives in gateway/plugins/proxy.ts alone.
 * - No cycles.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle makes two modules one; split what both need into a third.",
      from: {},
      to: { circular: true },
    },
    {
      name: "core-imports-no-transport",
      severity: "error",
      comment: "services/authz/oauth/ is the protocol core: pure functions and the ports they need, no Connect, fastify, Redis or HTTP.",
      from: { path: "^services/authz/oauth/" },
      to: {
        path: [
          "^services/authz/(?!oauth/)",
          "^gateway/",
          "^gen/",
          "node_modules/(@connectrpc|@bufbuild|fastify|@fastify|ioredis|pino|http-proxy|prom-client|yaml|zod)/",
        ],
      },
    },
    {
      name: "core-imports-no-node-networking",
      severity: "error",
      comment: "The protocol core talks to the world only through its ports.",
      from: { path: "^services/authz/oauth/" },
      to: { dependencyTypes: ["core"], path: "^(node:)?(http|http2|https|net|tls|dgram|dns|child_process|cluster)$" },
    },
    {
      name: "store-implements-core-ports",
      severity: "error",
      comment: "store/ depends on the core's ports, never on the RPC layer, the transport or the composition root.",
      from: { path: "^services/authz/store/" },
      to: { path: "^services/authz/(rpc|transport|interceptors)/|^services/authz/(app|main|deps|routes)\\.ts$" },
    },
    {
      name: "gateway-not-authz",
      severity: "error",
      comment: "The gateway reaches the authz service through gen/ (RPCs) only.",
      from: { path: "^gateway/" },
      to: { path: "^services/" },
    },
    {
      name: "authz-not-gateway",
      severity: "error",
      comment: "The authz service knows nothing of the gateway.",
      from: { path: "^services/" },
      to: { path: "^gateway/" },
    },
    {
      name: "startup-is-shared",
      severity: "error",
      comment: "startup/ is shared by both processes, so it imports neither.",
      from: { path: "^startup/" },
      to: { path: "^(services|gateway)/" },
    },
    {
      name: "contract-is-shared",
      severity: "error",
      comment: "contract/ is what the gateway and the authz service agree on, so it imports neither.",
      from: { path: "^contract/" },
      to: { path: "^(services|gateway|startup)/" },
    },
    {
      name: "plugins-only-from-app",
      severity: "error",
      comment: "A fastify plugin is wired by gateway/app.ts; what other modules need from one belongs outside plugins/.",
      from: { path: "^gateway/", pathNot: "^gateway/app\\.ts$" },
      to: { path: "^gateway/plugins/" },
    },
    {
      name: "guard-pipeline-framework-free",
      severity: "error",
      comment: "The guard's decisions (gateway/guard/) are made without fastify, http-proxy or node:http objects.",
      from: { path: "^gateway/guard/" },
      to: { path: ["^gateway/plugins/", "node_modules/(fastify|@fastify|http-proxy)/"] },
    },
    {
      name: "guard-pipeline-no-node-http",
      severity: "error",
      comment: "The pipeline takes a request description, not Node's request: entrances translate (gateway/entrances/).",
      from: { path: "^gateway/guard/pipeline\\.ts$" },
      to: { dependencyTypes: ["core"], path: "^(node:)?(http|http2|https|net)$" },
    },
    {
      name: "http-proxy-in-proxy-plugin",
      severity: "error",
      comment: "http-proxy lives in gateway/plugins/proxy.ts alone.",
      from: { pathNot: "^gateway/plugins/proxy\\.ts$" },
      to: { path: "node_modules/http-proxy/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^dist/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"], extensions: [".ts", ".js"] },
    moduleSystems: ["es6", "cjs"],
  },
};
