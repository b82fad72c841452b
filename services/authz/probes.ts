import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type * as http from "node:http";
import type { Registry } from "prom-client";
import type { Health } from "./health.js";

/**
 * HTTP probes on the RPC port, for Kubernetes httpGet probes: GET /healthz
 * (the process answers) and GET /readyz (not draining, store reachable), and
 * GET /metrics (Prometheus text) when a registry is given.
 * Everything that is neither an RPC nor a probe is 404.
 */
/** connect-node's handler shape (its `fallback` option). */
type NodeHandlerFn = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;

export function createProbeHandler(health: Health, registry?: Registry): NodeHandlerFn {
  return (request, response): void => {
    const send = (status: number, body: object) => {
      const text = JSON.stringify(body);
      (response as http.ServerResponse).writeHead(status, {
        "content-type": "application/json",
        "cache-control": "no-store",
        "content-length": Buffer.byteLength(text),
      });
      response.end(text);
    };
    const path = (request.url ?? "").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") return send(404, { error: "not_found" });
    if (path === "/healthz") return send(200, { status: "ok" });
    if (path === "/metrics" && registry !== undefined) {
      void registry.metrics().then((text) => {
        (response as http.ServerResponse).writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
        response.end(text);
      });
      return;
    }
    if (path === "/readyz") {
      void health.status().then((status) => (status === "SERVING" ? send(200, { status: "ready" }) : send(503, { status: health.draining ? "draining" : "store unreachable" })));
      return;
    }
    send(404, { error: "not_found" });
  };
}
