/**
 * Rendering deploy/ the way `kubectl apply -k` would, with no cluster: a copy
 * of the tree gets freshly made Secret files (what deploy/create-secrets.sh
 * makes; never the real ones a developer may have in the checkout), then
 * `kubectl kustomize` renders it, and the output is parsed into objects.
 * Also a little of what the API server and the kubelet do with those objects:
 * label selectors, and the environment and files a container would see.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair } from "jose";
import { beforeAll } from "vitest";
import { parseAllDocuments } from "yaml";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { scaledBudget } from "../support/scaled-budget.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DEPLOY = join(ROOT, "deploy");
/** Every overlay, and the namespace each one deploys to. */
export const OVERLAYS = { dev: "gatehouse-dev", production: "gatehouse" } as const;
export type OverlayName = keyof typeof OVERLAYS;

/** kubectl to render with: $KUBECTL (to try another version), else the one on the PATH. */
export const KUBECTL = process.env.KUBECTL ?? "kubectl";

export type Labels = Record<string, string>;
export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: Array<{ key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }>;
}

/** A rendered object; only what the tests read is typed, the rest is `unknown`. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Probe {
  httpGet?: { path?: string; port: number | string; scheme?: string };
  tcpSocket?: { port: number | string };
  grpc?: { port: number; service?: string };
  exec?: { command: string[] };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  env?: EnvVar[];
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
}

export interface Volume {
  name: string;
  configMap?: { name: string; defaultMode?: number };
  secret?: { secretName: string; defaultMode?: number };
  emptyDir?: Record<string, unknown>;
  hostPath?: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext & { fsGroup?: number };
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}

export interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: LabelSelector;
    template: { metadata: { labels?: Labels; annotations?: Record<string, string> }; spec: PodSpec };
  };
}

export const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

export function isWorkload(object: K8sObject): object is Workload {
  return WORKLOAD_KINDS.has(object.kind);
}

/** Parses kubectl's multi-document YAML output. */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`rendered YAML does not parse: ${document.errors[0]!.message}`);
      return document.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
}

/**
 * `kubectl kustomize DIR`: stdout, stderr and exit status, never throwing. It
 * renders in about 0.3 s on a quiet machine; the budget (10 s quiet, scaled by
 * TEST_TIME_SCALE) only stops a kubectl that hangs.
 */
export function kustomize(dir: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(KUBECTL, ["kustomize", dir], { encoding: "utf8", timeout: scaledBudget(10_000) });
  if (result.error !== undefined) throw new Error(`cannot run ${KUBECTL}: ${result.error.message} (bash .ci/run installs it)`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A private copy of deploy/, without any secrets/ folder of the checkout. Remove it with `rm`. */
export function copyDeployTree(): { root: string; deploy: string; rm(): void } {
  const root = mkdtempSync(join(tmpdir(), "gatehouse-deploy-"));
  const deploy = join(root, "deploy");
  cpSync(DEPLOY, deploy, { recursive: true, filter: (source) => !/[\\/]overlays[\\/][^\\/]+[\\/]secrets$/.test(source) });
  return { root, deploy, rm: () => rmSync(root, { recursive: true, force: true }) };
}

/** The Secret files an overlay's secretGenerator reads, as deploy/create-secrets.sh makes them. */
export async function writeSecretFiles(overlayDir: string): Promise<void> {
  const dir = join(overlayDir, "secrets");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "test-key-1", alg: "ES256", use: "sig" };
  const random = () => randomBytes(32).toString("base64url");
  const files: Record<string, string> = { "jwks.json": JSON.stringify({ keys: [jwk] }), "service-credential": random(), "redis-password": random() };
  for (const client of ["gateway", "notes-api"]) {
    const secret = random();
    files[`${client}-client-secret`] = secret;
    files[`${client}-client-secret.hash`] = `sha256:${hashSecret(secret)}`;
  }
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), value, { mode: 0o600 });
}

export interface Rendered {
  overlay: OverlayName;
  namespace: string;
  objects: K8sObject[];
  stderr: string;
}

/** Renders an overlay with fresh secrets in a private copy of deploy/. */
export async function renderOverlay(overlay: OverlayName): Promise<Rendered> {
  const tree = copyDeployTree();
  try {
    const dir = join(tree.deploy, "overlays", overlay);
    await writeSecretFiles(dir);
    const result = kustomize(dir);
    if (result.status !== 0) throw new Error(`kubectl kustomize overlays/${overlay} failed (${result.status}):\n${result.stderr}`);
    return { overlay, namespace: OVERLAYS[overlay], objects: parseObjects(result.stdout), stderr: result.stderr };
  } finally {
    tree.rm();
  }
}

/**
 * Renders every overlay once before the tests of a file, and returns the
 * accessor the tests use. A render that fails fails each test that asks for
 * it, with kubectl's message, rather than skipping them.
 */
export function renderOverlaysBeforeAll(): (overlay: OverlayName) => Rendered {
  const results = new Map<OverlayName, Rendered | Error>();
  beforeAll(async () => {
    for (const overlay of Object.keys(OVERLAYS) as OverlayName[]) {
      try {
        results.set(overlay, await renderOverlay(overlay));
      } catch (error) {
        results.set(overlay, error as Error);
      }
    }
  });
  return (overlay) => {
    const result = results.get(overlay);
    if (result instanceof Error) throw result;
    if (result === undefined) throw new Error(`overlays/${overlay} was not rendered`);
    return result;
  };
}

/** Label selector semantics (k8s.io/apimachinery labels.Selector). An empty selector selects everything. */
export function selects(selector: LabelSelector | undefined, labels: Labels | undefined): boolean {
  if (selector === undefined) return false;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (have[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, expression.key);
    const inValues = present && (expression.values ?? []).includes(have[expression.key]!);
    const ok =
      expression.operator === "In" ? inValues
      : expression.operator === "NotIn" ? !inValues
      : expression.operator === "Exists" ? present
      : !present;
    if (!ok) return false;
  }
  return true;
}

/** A pod as a template describes it: where it runs and what it is labelled. */
export interface PodTemplate {
  workload: Workload;
  namespace: string;
  labels: Labels;
  spec: PodSpec;
}

export function podTemplates(rendered: Rendered): PodTemplate[] {
  return rendered.objects.filter(isWorkload).map((workload) => ({
    workload,
    namespace: workload.metadata.namespace ?? "default",
    labels: workload.spec.template.metadata.labels ?? {},
    spec: workload.spec.template.spec,
  }));
}

export function find(rendered: Rendered, kind: string, name: string, namespace?: string): K8sObject | undefined {
  return rendered.objects.find(
    (o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || (o.metadata.namespace ?? "default") === namespace),
  );
}

/** A container port by name or number, as probes, Services and NetworkPolicies refer to it. */
export function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === "number") return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** The decoded value of one key of a ConfigMap or Secret, as a pod would see it. */
function dataOf(rendered: Rendered, kind: "Secret" | "ConfigMap", name: string, namespace: string): Record<string, string> | undefined {
  const object = find(rendered, kind, name, namespace);
  if (object === undefined) return undefined;
  const data = (object.data ?? {}) as Record<string, string>;
  if (kind === "ConfigMap") return data;
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]));
}

/**
 * The environment a container starts with: literal values, and values from
 * Secret and ConfigMap keys. A missing non-optional reference throws, as the
 * kubelet would refuse to start the container.
 */
export function containerEnvironment(rendered: Rendered, pod: PodTemplate, container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env[variable.name] = variable.value;
      continue;
    }
    const ref = variable.valueFrom?.secretKeyRef ?? variable.valueFrom?.configMapKeyRef;
    if (ref === undefined) continue;
    const kind = variable.valueFrom?.secretKeyRef !== undefined ? "Secret" : "ConfigMap";
    const value = dataOf(rendered, kind, ref.name, pod.namespace)?.[ref.key];
    if (value === undefined) {
      if (ref.optional === true) continue;
      throw new Error(`${pod.workload.metadata.name}/${container.name}: env ${variable.name} needs ${kind} ${ref.name} key ${ref.key}, which is not rendered`);
    }
    env[variable.name] = value;
  }
  return env;
}

/**
 * Writes the files a container would see at its volume mounts under `dir`,
 * and returns the map from mount path to local directory.
 */
export function materializeMounts(rendered: Rendered, pod: PodTemplate, container: Container, dir: string): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const [i, mount] of (container.volumeMounts ?? []).entries()) {
    const volume = pod.spec.volumes?.find((v) => v.name === mount.name);
    if (volume === undefined) throw new Error(`${pod.workload.metadata.name}/${container.name}: volumeMount ${mount.name} has no volume`);
    const local = join(dir, `mount-${i}`);
    mkdirSync(local, { recursive: true });
    const source =
      volume.configMap !== undefined ? dataOf(rendered, "ConfigMap", volume.configMap.name, pod.namespace)
      : volume.secret !== undefined ? dataOf(rendered, "Secret", volume.secret.secretName, pod.namespace)
      : {};
    if (source === undefined) throw new Error(`${pod.workload.metadata.name}/${container.name}: volume ${volume.name} refers to a ConfigMap or Secret that is not rendered`);
    for (const [key, value] of Object.entries(source)) writeFileSync(join(local, key), value);
    mounts.set(mount.mountPath, local);
  }
  return mounts;
}

/** Reads a file at a container path through the mounts; undefined when no mount has it. */
export function readMounted(mounts: Map<string, string>, path: string): string | undefined {
  for (const [mountPath, local] of mounts) {
    const relative = posix.relative(mountPath, path);
    if (relative !== "" && !relative.startsWith("..") && !posix.isAbsolute(relative)) {
      try {
        return readFileSync(join(local, relative), "utf8");
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Rewrites container paths in a configuration text to where the mounts were written locally. */
export function localizePaths(text: string, mounts: Map<string, string>): string {
  // One pass, longest mount path first, so a replacement is never rewritten again (/tmp inside a local path).
  const ordered = [...mounts].sort((a, b) => b[0].length - a[0].length);
  if (ordered.length === 0) return text;
  const pattern = new RegExp(ordered.map(([mountPath]) => `${mountPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/`).join("|"), "g");
  return text.replace(pattern, (match) => `${mounts.get(match.slice(0, -1))}/`);
}

/** Files git has or would take under a path of the repository: tracked, or untracked and not ignored. */
export function gitVisibleFiles(path: string): string[] {
  return execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", path], { cwd: ROOT, encoding: "utf8" })
    .split("\0")
    .filter((f) => f !== "");
}
