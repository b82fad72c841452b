import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parse } from "acorn";
import { simple } from "acorn-walk";
import { transformSync } from "esbuild";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/process.js";

/**
 * A rule for the request paths, checked here rather than remembered: no
 * object literal there starts with a spread and goes on (`{ ...a, b }`,
 * `{ ...a, ...b }`); such objects are written `Object.assign({}, a, { b })`.
 *
 * Why: in Node 20's V8 (11.3) such a literal is built on a slow path, about
 * 1.5 µs an object against 0.08 µs for the same object written out (a loop of
 * 3 million), and every object built that way outlived two young-generation
 * collections and was promoted to the old generation, where mark-compacts
 * then collected it (`--trace-gc-nvp`). In the sidecar, one such literal (the
 * upstream request's options) promoted about 600 bytes a request, 280 KB per
 * scavenge; without it, 3 KB. A literal whose first member is not a spread
 * (`{ a, ...b }`), a lone `{ ...a }`, and `Object.assign` are not affected.
 * README, "Speed", has the measurements.
 */

/** The modules every benchmarked request passes through: the guard, its entrances, the token endpoints, the RPC hop, the core. */
const REQUEST_PATHS = [
  "gateway/guard",
  "gateway/entrances",
  "gateway/rpc",
  "gateway/plugins/proxy.ts",
  "gateway/plugins/lean-token-endpoints.ts",
  "gateway/plugins/check-endpoint.ts",
  "gateway/oauth-error-response.ts",
  "gateway/token-endpoints.ts",
  "gateway/upstream.ts",
  "contract/metadata-headers.ts",
  "services/authz/oauth",
  "services/authz/rpc/authorization-service.ts",
  "services/authz/rpc/caller.ts",
  "services/authz/interceptors",
  "services/authz/transport",
  "services/authz/store/redis-store.ts",
  "services/authz/store/memory-store.ts",
];

/** The TypeScript sources at a path of the repository: the file, or every one below the directory. */
function sourceFiles(path: string): string[] {
  const full = join(ROOT, path);
  if (statSync(full).isDirectory()) return readdirSync(full).flatMap((name) => sourceFiles(join(path, name)));
  return full.endsWith(".ts") && !full.endsWith(".d.ts") ? [full] : [];
}

/** `file:line: literal` for every object literal that starts with a spread and has more members. */
function leadingSpreadLiterals(file: string, typescript: string): string[] {
  // esbuild removes the types and keeps object literals as written (target esnext).
  const { code } = transformSync(typescript, { loader: "ts", format: "esm", target: "esnext", sourcemap: false });
  const found: string[] = [];
  simple(parse(code, { ecmaVersion: "latest", sourceType: "module", locations: true }), {
    ObjectExpression(node) {
      if (node.properties.length >= 2 && node.properties[0]!.type === "SpreadElement") {
        found.push(`${file}: ${code.slice(node.start, node.end).replace(/\s+/g, " ").slice(0, 100)}`);
      }
    },
  });
  return found;
}

describe("request paths: no object literal that starts with a spread and goes on", () => {
  it("finds such a literal (the check itself)", () => {
    expect(leadingSpreadLiterals("a.ts", "const a = { x: 1 }; const b: object = { ...a, y: 2 };")).toHaveLength(1);
    expect(leadingSpreadLiterals("a.ts", "const a = { x: 1 }; const c = { ...a, ...a };")).toHaveLength(1);
    expect(leadingSpreadLiterals("a.ts", "const a = { x: 1 }; const b = { y: 2, ...a }; const c = { ...a }; const d = Object.assign({}, a, { y: 2 });")).toHaveLength(0);
  });

  it("has none in the modules of the request paths", () => {
    const files = REQUEST_PATHS.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(40);
    const found = files.flatMap((file) => leadingSpreadLiterals(relative(ROOT, file), readFileSync(file, "utf8")));
    expect(found, "write these as Object.assign({}, a, { ... }) (see the comment at the top of this test)").toEqual([]);
  });
});
