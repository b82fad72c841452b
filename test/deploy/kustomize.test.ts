import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as models from "kubernetes-models";
import { describe, expect, it } from "vitest";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { scaledBudget } from "../support/scaled-budget.js";
import {
  DEPLOY,
  OVERLAYS,
  ROOT,
  copyDeployTree,
  gitVisibleFiles,
  kustomize,
  parseObjects,
  renderOverlaysBeforeAll,
  type K8sObject,
  type OverlayName,
} from "./support.js";

const overlayNames = Object.keys(OVERLAYS) as OverlayName[];

/** Every model class of kubernetes-models, by "apiVersion kind". */
type ModelClass = (new (data: unknown) => { validate(): void }) & { apiVersion: string; kind: string };
const MODELS = new Map<string, ModelClass>();
(function collect(namespace: object, depth: number): void {
  for (const value of Object.values(namespace)) {
    if (typeof value === "function" && typeof value.apiVersion === "string" && typeof value.kind === "string") {
      MODELS.set(`${value.apiVersion} ${value.kind}`, value as ModelClass);
    } else if (value !== null && typeof value === "object" && depth < 3) {
      collect(value as object, depth + 1);
    }
  }
})(models, 0);

/** The API schema's complaints about an object; empty when it is valid. */
function schemaProblems(object: K8sObject): string[] {
  const Model = MODELS.get(`${object.apiVersion} ${object.kind}`);
  const at = `${object.kind} ${object.metadata?.name ?? "(no name)"}`;
  if (Model === undefined) return [`${at}: no schema for ${object.apiVersion} ${object.kind} (not a built-in kind of this Kubernetes version)`];
  // Go's base64 decoder, which reads Secret data in the API server, skips
  // line breaks; kustomize wraps long values. The schema's "byte" format does not.
  const data = object.kind === "Secret" && object.data !== undefined
    ? Object.fromEntries(Object.entries(object.data as Record<string, string>).map(([key, value]) => [key, value.replace(/[\r\n]/g, "")]))
    : undefined;
  try {
    new Model(data === undefined ? object : { ...object, data }).validate();
    return [];
  } catch (error) {
    return [`${at}: ${(error as Error).message}`];
  }
}

const rendered = renderOverlaysBeforeAll();

describe("kubectl kustomize renders the deploy/ tree", () => {
  it("every overlay in deploy/overlays is one these tests render", () => {
    expect(readdirSync(join(DEPLOY, "overlays")).sort()).toEqual([...overlayNames].sort());
  });

  it.each(overlayNames)("overlays/%s renders into named objects in its own namespace", (overlay) => {
    const { objects, namespace } = rendered(overlay);
    expect(objects.length).toBeGreaterThan(10);
    for (const object of objects) {
      expect(object.apiVersion, JSON.stringify(object.metadata)).toBeTypeOf("string");
      expect(object.kind).toBeTypeOf("string");
      expect(object.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      if (object.kind !== "Namespace") expect(object.metadata.namespace, `${object.kind} ${object.metadata.name}`).toBe(namespace);
    }
    expect(objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name)).toEqual([namespace]);
  });

  it("the base renders on its own (its ConfigMaps and Secrets come from an overlay)", () => {
    const result = kustomize(join(DEPLOY, "base"));
    expect(result.status, result.stderr).toBe(0);
    const kinds = new Set(parseObjects(result.stdout).map((o) => o.kind));
    for (const kind of ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"]) expect(kinds).toContain(kind);
  });

  it("only the dev overlay bundles a Redis; production has none", () => {
    const redis = (overlay: OverlayName) => rendered(overlay).objects.filter((o) => o.metadata.labels?.["app.kubernetes.io/name"] === "redis");
    expect(redis("dev").map((o) => o.kind).sort()).toEqual(["Deployment", "NetworkPolicy", "Service"]);
    expect(redis("production")).toEqual([]);
  });

  it("an overlay does not render until its secret files are made: nothing committed stands in for them", () => {
    const tree = copyDeployTree();
    try {
      for (const overlay of overlayNames) {
        const result = kustomize(join(tree.deploy, "overlays", overlay));
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/secrets\//);
      }
    } finally {
      tree.rm();
    }
  });

  /**
   * The budget: the script's time goes into starting processes, not into making
   * keys (an ES256 key pair takes milliseconds). Its first run starts three
   * node processes under tsx, which compiles TypeScript at start (generate-jwks
   * about 0.9 s, hash-secret about 0.5 s twice, on a quiet two-core machine),
   * and three plain node ones (about 0.15 s each); the second run starts none,
   * and kubectl kustomize renders once. About 2 s in all on a quiet machine,
   * and 30 s at a load average of 13 (starting processes suffers most from a
   * busy machine); 20 s quiet, scaled by TEST_TIME_SCALE.
   */
  const createSecretsBudgetMs = scaledBudget(20_000);
  it("deploy/create-secrets.sh makes every file an overlay needs, matching pairs, and never overwrites one", { timeout: createSecretsBudgetMs }, () => {
    const tree = copyDeployTree();
    try {
      const overlay = join(tree.deploy, "overlays", "dev");
      const run = () => spawnSync("bash", [join(DEPLOY, "create-secrets.sh"), overlay], { cwd: ROOT, encoding: "utf8", timeout: createSecretsBudgetMs });
      const first = run();
      expect(first.status, first.stderr).toBe(0);
      const secrets = join(overlay, "secrets");
      const read = (name: string) => readFileSync(join(secrets, name), "utf8");
      const files = readdirSync(secrets).sort();
      expect(files).toEqual(
        ["gateway-client-secret", "gateway-client-secret.hash", "jwks.json", "notes-api-client-secret", "notes-api-client-secret.hash", "service-credential"].sort(),
      );
      for (const name of files) {
        // Environment variables carry values byte for byte: a trailing newline would be part of the credential.
        if (name !== "jwks.json") expect(read(name), name).not.toMatch(/\s$/);
        expect(statSync(join(secrets, name)).mode & 0o077, `${name} is readable by others`).toBe(0);
      }
      for (const client of ["gateway", "notes-api"]) {
        expect(read(`${client}-client-secret`).length).toBeGreaterThanOrEqual(43); // 256 bits, base64url
        expect(read(`${client}-client-secret.hash`)).toBe(`sha256:${hashSecret(read(`${client}-client-secret`))}`);
      }
      const keys = (JSON.parse(read("jwks.json")) as { keys: Array<Record<string, string>> }).keys;
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
      expect(keys[0]!.d).toBeTypeOf("string");

      const before = Object.fromEntries(files.map((name) => [name, read(name)]));
      const second = run();
      expect(second.status, second.stderr).toBe(0);
      expect(Object.fromEntries(files.map((name) => [name, read(name)]))).toEqual(before);

      const result = kustomize(overlay);
      expect(result.status, result.stderr).toBe(0);
      expect(parseObjects(result.stdout).filter((o) => o.kind === "Secret")).toHaveLength(5);
    } finally {
      tree.rm();
    }
  });

  it("git sees no secret file and no private key under deploy/", () => {
    const files = gitVisibleFiles("deploy");
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      expect(file).not.toMatch(/(^|\/)secrets\//);
      const text = readFileSync(join(ROOT, file), "utf8");
      expect(text, file).not.toMatch(/PRIVATE KEY|"d"\s*:\s*"/);
    }
  });
});

describe("every rendered object validates against the Kubernetes API schema (kubernetes-models)", () => {
  it.each(overlayNames)("overlays/%s", (overlay) => {
    expect(rendered(overlay).objects.flatMap(schemaProblems)).toEqual([]);
  });

  it("the validator refuses what the API server would refuse", () => {
    const deployment = rendered("dev").objects.find((o) => o.kind === "Deployment")!;
    const broken = structuredClone(deployment) as K8sObject & { spec: Record<string, unknown> };
    broken.spec.replicas = "two";
    expect(schemaProblems(broken).join()).toMatch(/replicas must be integer/);
    const noSelector = structuredClone(deployment) as K8sObject & { spec: Record<string, unknown> };
    delete noSelector.spec.selector;
    expect(schemaProblems(noSelector).join()).toMatch(/selector/);
    expect(schemaProblems({ ...deployment, kind: "Deploymnet" }).join()).toMatch(/no schema/);
  });
});
