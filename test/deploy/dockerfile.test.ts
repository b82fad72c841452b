import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scaledBudget } from "../support/scaled-budget.js";
import { ROOT } from "./support.js";
import { copyParts, ignoredByDocker, lintDockerfile, missingFromContext, parseDockerfile, parseDockerignore, stagesOf } from "./dockerfile.js";

const DOCKERFILE = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const DOCKERIGNORE = readFileSync(join(ROOT, ".dockerignore"), "utf8");
const DISPATCHER = readFileSync(join(ROOT, "bin/gatehouse.mjs"), "utf8");

/** A few files of a folder of the repository (or the file itself), for checking what reaches the build context. */
function sample(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { recursive: true, encoding: "utf8" })
    .filter((f) => statSync(join(full, f)).isFile())
    .slice(0, 50)
    .map((f) => `${path}/${f}`);
}

/** Replaces one line of the Dockerfile that matches, failing if none does (so a mutation never silently misses). */
function edit(text: string, pattern: RegExp, replacement: string): string {
  expect(text).toMatch(pattern);
  return text.replace(pattern, replacement);
}

describe("the Dockerfile", () => {
  it("follows every rule: multi-stage, pinned base image, numeric non-root USER, production dependencies only, no secrets, exec-form ENTRYPOINT", () => {
    expect(lintDockerfile(DOCKERFILE)).toEqual([]);
  });

  it.each([
    ["a single stage", (t: string) => t.slice(t.lastIndexOf("FROM ")), /not multi-stage/],
    ["an unpinned base image", (t: string) => t.replaceAll("node:20.20.2-bookworm-slim", "node:20-bookworm-slim"), /not an exact version/],
    ["latest", (t: string) => t.replaceAll("node:20.20.2-bookworm-slim", "node:latest"), /uses latest/],
    ["an untagged base image", (t: string) => t.replaceAll("node:20.20.2-bookworm-slim", "node"), /no tag/],
    ["stages on different Node.js releases", (t: string) => edit(t, /FROM node:20\.20\.2-bookworm-slim AS deps/, "FROM node:20.19.0-bookworm-slim AS deps"), /different base images/],
    ["a user name", (t: string) => edit(t, /^USER .*$/m, "USER node"), /not numeric/],
    ["root", (t: string) => edit(t, /^USER .*$/m, "USER 0:0"), /root/],
    ["no USER", (t: string) => edit(t, /^USER .*$/m, ""), /no USER/],
    ["dev dependencies installed in the final stage", (t: string) => `${t}\nRUN npm ci\n`, /installs dev dependencies/],
    ["node_modules from the build stage", (t: string) => edit(t, /COPY --from=deps \/app\/node_modules/, "COPY --from=build /app/node_modules"), /copies node_modules from stage build/],
    ["a deploy secret copied in", (t: string) => `${t}\nCOPY deploy/overlays/production/secrets/jwks.json /app/\n`, /a secret/],
    ["an .env file copied in", (t: string) => `${t}\nCOPY .env /app/.env\n`, /a secret/],
    ["a secret in ENV", (t: string) => `${t}\nENV GATEHOUSE_SERVICE_CREDENTIAL=hunter2\n`, /bakes a secret/],
    ["a shell-form ENTRYPOINT", (t: string) => edit(t, /^ENTRYPOINT .*$/m, "ENTRYPOINT node /app/bin/gatehouse.mjs"), /shell form/],
  ])("is refused with %s", (_name, mutate, expected) => {
    expect(lintDockerfile(mutate(DOCKERFILE)).join("\n")).toMatch(expected);
  });

  it("reads instructions as Docker does: continuation lines, comments inside them, flags", () => {
    const instructions = parseDockerfile("# c\nFROM a:1.2.3 AS x\nRUN one \\\n  # inside\n  two\nCOPY --from=x --chown=1:1 /a /b\n");
    expect(instructions.map((i) => [i.keyword, i.rest])).toEqual([["FROM", "a:1.2.3 AS x"], ["RUN", "one two"], ["COPY", "/a /b"]]);
    expect(instructions[2]!.flags).toEqual({ from: "x", chown: "1:1" });
  });

  it("the build stage copies every folder tsconfig.build.json compiles", () => {
    const include = (JSON.parse(readFileSync(join(ROOT, "tsconfig.build.json"), "utf8")) as { include: string[] }).include;
    const build = stagesOf(parseDockerfile(DOCKERFILE)).find((s) => s.name === "build")!;
    const copied = build.instructions.filter((i) => i.keyword === "COPY" && i.flags.from === undefined).flatMap((i) => copyParts(i).sources);
    for (const folder of include) expect(copied).toContain(folder);
    expect(build.instructions.some((i) => i.keyword === "RUN" && /npm run build/.test(i.rest))).toBe(true);
  });

  it("the base image's Node.js satisfies package.json engines", () => {
    const [major, minor] = /node:(\d+)\.(\d+)\.\d+/.exec(DOCKERFILE)!.slice(1).map(Number) as [number, number];
    const [wantMajor, wantMinor] = /(\d+)\.(\d+)/.exec((JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines: { node: string } }).engines.node)!.slice(1).map(Number) as [number, number];
    expect(major > wantMajor || (major === wantMajor && minor >= wantMinor)).toBe(true);
  });
});

describe(".dockerignore", () => {
  const patterns = parseDockerignore(DOCKERIGNORE);

  it.each([
    "node_modules/jose/package.json",
    ".git/HEAD",
    "test/unit/pkce.test.ts",
    "test/deploy/support.ts",
    "dist/services/authz/main.js",
    ".tmp/vitest-results.json",
    "coverage/index.html",
    "deploy/overlays/production/secrets/jwks.json",
    "deploy/base/kustomization.yaml",
    ".env",
    "services/authz/.env.local",
    "services/node_modules/x/index.js",
    "services/authz/store/memory-store.test.ts",
    "gateway/test/fixture.ts",
    "scripts/secrets/key.pem",
  ])("leaves %s out of the build context", (path) => {
    expect(ignoredByDocker(patterns, path)).toBe(true);
  });

  it.each(["package.json", "package-lock.json", "tsconfig.build.json", "services/authz/main.ts", "gateway/main.ts", "gen/gatehouse/v1/authorization_service_pb.ts", "bin/gatehouse.mjs"])(
    "lets %s in",
    (path) => {
      expect(ignoredByDocker(patterns, path)).toBe(false);
    },
  );

  it("lets in everything the Dockerfile copies from the context", () => {
    expect(missingFromContext(DOCKERFILE, patterns, ROOT, sample)).toEqual([]);
  });

  it("is read as BuildKit reads it (a denylist without the catch-all still leaves out what it names; a dropped exception shows)", () => {
    const denylist = parseDockerignore("node_modules\n.git\ntest\n**/*.log\n");
    expect(ignoredByDocker(denylist, "node_modules/a/b.js")).toBe(true);
    expect(ignoredByDocker(denylist, "test/unit/a.ts")).toBe(true);
    expect(ignoredByDocker(denylist, "services/a/b.log")).toBe(true);
    expect(ignoredByDocker(denylist, "services/a/b.ts")).toBe(false);
    const withoutBin = parseDockerignore(DOCKERIGNORE.replace("!bin/gatehouse.mjs", ""));
    expect(missingFromContext(DOCKERFILE, withoutBin, ROOT, sample).join()).toMatch(/bin\/gatehouse\.mjs is left out/);
    expect(ignoredByDocker(parseDockerignore(DOCKERIGNORE.replace(/^\*$/m, "").replace("**/test\n", "")), "test/support/process.ts")).toBe(false);
  });
});

describe("bin/gatehouse.mjs, the image's entry point", () => {
  const targets = [...DISPATCHER.matchAll(/"([a-z-]+)":\s*"\.\.\/dist\/([^"]+)\.js"|\b([a-z]+):\s*"\.\.\/dist\/([^"]+)\.js"/g)].map((m) => ({
    command: m[1] ?? m[3]!,
    source: `${m[2] ?? m[4]!}.ts`,
  }));

  it("runs the compiled entry points of both processes, and the secret tools", () => {
    expect(targets.map((t) => t.command)).toEqual(expect.arrayContaining(["authz", "gateway", "generate-jwks", "hash-secret"]));
    const include = (JSON.parse(readFileSync(join(ROOT, "tsconfig.build.json"), "utf8")) as { include: string[] }).include;
    for (const { command, source } of targets) {
      expect(existsSync(join(ROOT, source)), `${command}: ${source}`).toBe(true);
      expect(include.some((folder) => source.startsWith(`${folder}/`)), `${source} is compiled by npm run build`).toBe(true);
    }
    expect(targets.find((t) => t.command === "authz")?.source).toBe("services/authz/main.ts");
    expect(targets.find((t) => t.command === "gateway")?.source).toBe("gateway/main.ts");
  });

  it("refuses an unknown command with usage (exit 64) and prints usage for --help", () => {
    // Plain node, no command started: a fraction of a second; the budget only stops a hang.
    const run = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/gatehouse.mjs"), ...args], { encoding: "utf8", timeout: scaledBudget(5_000) });
    const unknown = run("serve");
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toMatch(/unknown command "serve"; commands: authz, gateway/);
    expect(run().status).toBe(64);
    const help = run("--help");
    expect(help.status).toBe(0);
    expect(help.stderr).toMatch(/usage: gatehouse <command>/);
  });

  it("is what the image starts, beside the package.json that makes dist/ ES modules", () => {
    const final = stagesOf(parseDockerfile(DOCKERFILE)).at(-1)!;
    const copied = final.instructions.filter((i) => i.keyword === "COPY" && i.flags.from === undefined).flatMap((i) => copyParts(i).sources);
    expect(copied).toContain("package.json");
    expect((JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { type?: string }).type).toBe("module");
    expect(DOCKERFILE).toMatch(/^ENTRYPOINT \["node", "--enable-source-maps", "\/app\/bin\/gatehouse\.mjs"\]$/m);
    expect(DOCKERFILE).toMatch(/^COPY bin\/gatehouse\.mjs \.\/bin\/gatehouse\.mjs$/m);
  });
});
