/**
 * The deployment policy of issue 5, as checks over rendered objects. Each
 * check returns its problems (empty: the rule holds), so that a test can both
 * assert a clean render and show that a broken manifest is caught.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, parseAuthzConfig, type AuthzConfig } from "../../services/authz/config.js";
import { createKeyRing } from "../../services/authz/oauth/key-ring.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { parseGatewayConfig, type GatewayConfig } from "../../gateway/config.js";
import {
  containerEnvironment,
  find,
  isWorkload,
  localizePaths,
  materializeMounts,
  podTemplates,
  readMounted,
  resolvePort,
  selects,
  type Container,
  type K8sObject,
  type Labels,
  type LabelSelector,
  type PodTemplate,
  type Probe,
  type Rendered,
} from "./support.js";

/**
 * The authz service's HTTP probes on its RPC port (services/authz/probes.ts):
 * GET /healthz answers while the process does, GET /readyz while it is not
 * draining and its store answers.
 */
export const AUTHZ_PROBE_PATHS = { liveness: "/healthz", readiness: "/readyz" } as const;
const LOOPBACK = new Set(["127.0.0.1", "::1", "[::1]", "localhost"]);
const PART_OF = "app.kubernetes.io/part-of";

// ---------------------------------------------------------------- helpers

const where = (pod: PodTemplate, container?: Container) =>
  `${pod.workload.kind} ${pod.workload.metadata.name}${container === undefined ? "" : ` container ${container.name}`}`;

/** A gatehouse container: the gatehouse image, started as `gatehouse authz` or `gatehouse gateway`. */
export interface GatehouseContainer {
  pod: PodTemplate;
  container: Container;
  role: "authz" | "gateway";
}

export function imageRepository(image: string): string {
  const withoutDigest = image.split("@")[0]!;
  const lastSlash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.lastIndexOf(":");
  return colon > lastSlash ? withoutDigest.slice(0, colon) : withoutDigest;
}

export function gatehouseContainers(rendered: Rendered): GatehouseContainer[] {
  return podTemplates(rendered).flatMap((pod) =>
    pod.spec.containers.flatMap((container): GatehouseContainer[] => {
      if (container.image === undefined || imageRepository(container.image).split("/").pop() !== "gatehouse") return [];
      const role = container.args?.[0];
      return role === "authz" || role === "gateway" ? [{ pod, container, role }] : [];
    }),
  );
}

/** Why an image reference is not pinned to an exact version, or undefined when it is. */
export function imageProblem(image: string | undefined): string | undefined {
  if (image === undefined || image === "") return "has no image";
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return undefined;
  const repository = imageRepository(image);
  if (repository === image) return `image ${image} has no tag (that means latest)`;
  const tag = image.slice(repository.length + 1);
  if (tag === "latest") return `image ${image} uses latest`;
  if (!/^v?\d+\.\d+\.\d+([-.+][0-9A-Za-z.-]+)?$/.test(tag)) return `image ${image}: tag ${tag} is not an exact version (x.y.z)`;
  return undefined;
}

/** A resource quantity in base units (cores, bytes), for comparing requests with limits. */
export function parseQuantity(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (match === null) return Number.NaN;
  const factors: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * (match[2] === undefined ? 1 : factors[match[2]]!);
}

function probes(container: Container): Array<[string, Probe]> {
  return (["livenessProbe", "readinessProbe", "startupProbe"] as const).flatMap((kind) => (container[kind] === undefined ? [] : [[kind, container[kind]!] as [string, Probe]]));
}

/** Seconds a preStop hook holds the container before SIGTERM. */
export function preStopSeconds(container: Container): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep !== undefined) return preStop.sleep.seconds;
  const command = preStop?.exec?.command ?? [];
  return command[0] === "sleep" || command[0] === "/bin/sleep" ? Number(command[1] ?? 0) : 0;
}

/** A pod as NetworkPolicy peers see it; `ports` resolves named ports of a destination. */
export interface Peer {
  namespace: string;
  labels: Labels;
  containers?: Container[];
}

const peerOf = (pod: PodTemplate): Peer => ({ namespace: pod.namespace, labels: pod.labels, containers: pod.spec.containers });

/** The Services whose selector selects a pod (a Service without a selector selects none). */
function servicesOf(rendered: Rendered, pod: PodTemplate): K8sObject[] {
  return rendered.objects.filter((o) => {
    const selector = (o.spec as { selector?: Labels } | undefined)?.selector;
    return o.kind === "Service" && (o.metadata.namespace ?? "default") === pod.namespace && selector !== undefined && selects({ matchLabels: selector }, pod.labels);
  });
}

function namespaceLabels(rendered: Rendered, namespace: string): Labels {
  return { "kubernetes.io/metadata.name": namespace, ...(find(rendered, "Namespace", namespace)?.metadata.labels ?? {}) };
}

interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}
interface PolicyPort {
  port?: number | string;
  protocol?: string;
}
interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: PolicyPort[];
}
interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
}

function networkPolicies(rendered: Rendered): Array<{ namespace: string; name: string; spec: NetworkPolicySpec }> {
  return rendered.objects
    .filter((o) => o.kind === "NetworkPolicy")
    .map((o) => ({ namespace: o.metadata.namespace ?? "default", name: o.metadata.name, spec: o.spec as NetworkPolicySpec }));
}

function policyTypes(spec: NetworkPolicySpec): string[] {
  return spec.policyTypes ?? (spec.egress !== undefined ? ["Ingress", "Egress"] : ["Ingress"]);
}

function peerMatches(rendered: Rendered, peer: PolicyPeer, policyNamespace: string, pod: Peer): boolean {
  // An ipBlock may cover any pod's address: counted as matching, so that a deny check never passes by accident.
  if (peer.ipBlock !== undefined) return true;
  const namespaceOk = peer.namespaceSelector === undefined ? pod.namespace === policyNamespace : selects(peer.namespaceSelector, namespaceLabels(rendered, pod.namespace));
  const podOk = peer.podSelector === undefined || selects(peer.podSelector, pod.labels);
  return namespaceOk && podOk;
}

function portMatches(rule: PolicyRule, port: number, protocol: string, destination: Peer): boolean {
  if (rule.ports === undefined || rule.ports.length === 0) return true;
  return rule.ports.some((p) => {
    if ((p.protocol ?? "TCP") !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "number") return p.port === port;
    return (destination.containers ?? []).some((c) => resolvePort(c, p.port!) === port);
  });
}

/**
 * Whether NetworkPolicies let `source` open a connection to `destination` on
 * `port`: ingress at the destination and egress at the source. With
 * `ingressOnly`, the destination's own policies alone: what protects it from
 * pods whose egress nobody restricts.
 */
export function connectionAllowed(rendered: Rendered, source: Peer, destination: Peer, port: number, { protocol = "TCP", ingressOnly = false } = {}): boolean {
  const policies = networkPolicies(rendered);
  const side = (direction: "Ingress" | "Egress", self: Peer, other: Peer) => {
    const applying = policies.filter((p) => p.namespace === self.namespace && policyTypes(p.spec).includes(direction) && selects(p.spec.podSelector, self.labels));
    if (applying.length === 0) return true; // not isolated in this direction
    return applying.some((p) =>
      (direction === "Ingress" ? p.spec.ingress : p.spec.egress)?.some((rule) => {
        const peers = direction === "Ingress" ? rule.from : rule.to;
        const peerOk = peers === undefined || peers.length === 0 || peers.some((peer) => peerMatches(rendered, peer, p.namespace, other));
        return peerOk && portMatches(rule, port, protocol, destination);
      }) ?? false,
    );
  };
  return side("Ingress", destination, source) && (ingressOnly || side("Egress", source, destination));
}

/** Egress from a pod to anything on a port (e.g. DNS), as far as the pod's own egress policies go. */
function egressAllowedAnywhere(rendered: Rendered, source: Peer, port: number, protocol: string): boolean {
  const anywhere: Peer = { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } };
  const policies = networkPolicies(rendered).filter((p) => p.namespace === source.namespace && policyTypes(p.spec).includes("Egress") && selects(p.spec.podSelector, source.labels));
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.spec.egress ?? []).some((rule) => (rule.to === undefined || rule.to.length === 0 || rule.to.some((peer) => peerMatches(rendered, peer, p.namespace, anywhere))) && portMatches(rule, port, protocol, anywhere)),
  );
}

// ------------------------------------------------------------------ checks

/** Pinned images, requests and limits, liveness and readiness probes on declared ports. */
export function checkContainers(rendered: Rendered): string[] {
  const problems: string[] = [];
  for (const pod of podTemplates(rendered)) {
    for (const container of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
      const at = where(pod, container);
      const image = imageProblem(container.image);
      if (image !== undefined) problems.push(`${at}: ${image}`);
      for (const kind of ["requests", "limits"] as const) {
        for (const resource of ["cpu", "memory"]) {
          if (container.resources?.[kind]?.[resource] === undefined) problems.push(`${at}: no resources.${kind}.${resource}`);
        }
      }
      for (const resource of ["cpu", "memory"]) {
        const request = container.resources?.requests?.[resource];
        const limit = container.resources?.limits?.[resource];
        if (request !== undefined && limit !== undefined && !(parseQuantity(request) <= parseQuantity(limit))) problems.push(`${at}: ${resource} request ${request} exceeds limit ${limit}`);
      }
      if (pod.spec.initContainers?.includes(container)) continue;
      if (container.livenessProbe === undefined) problems.push(`${at}: no livenessProbe`);
      if (container.readinessProbe === undefined) problems.push(`${at}: no readinessProbe`);
      for (const [kind, probe] of probes(container)) {
        const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
        if (port !== undefined && resolvePort(container, port) === undefined) problems.push(`${at}: ${kind} port ${port} is not a port of the container`);
        if (probe.httpGet !== undefined && !(probe.httpGet.path ?? "").startsWith("/")) problems.push(`${at}: ${kind} has no path`);
        if (probe.exec !== undefined && probe.exec.command.length === 0) problems.push(`${at}: ${kind} runs no command`);
        if (port === undefined && probe.exec === undefined) problems.push(`${at}: ${kind} checks nothing`);
      }
    }
  }
  return problems;
}

/** Non-root, read-only root, no privilege escalation, capabilities dropped, seccomp; nothing of the node's. */
export function checkSecurity(rendered: Rendered): string[] {
  const problems: string[] = [];
  for (const pod of podTemplates(rendered)) {
    const podContext = pod.spec.securityContext ?? {};
    if (pod.spec.hostNetwork === true || pod.spec.hostPID === true || pod.spec.hostIPC === true) problems.push(`${where(pod)}: shares a namespace of the node`);
    for (const volume of pod.spec.volumes ?? []) if (volume.hostPath !== undefined) problems.push(`${where(pod)}: volume ${volume.name} mounts the node's filesystem`);
    const account = pod.spec.serviceAccountName === undefined ? undefined : find(rendered, "ServiceAccount", pod.spec.serviceAccountName, pod.namespace);
    if (pod.spec.automountServiceAccountToken !== false && account?.automountServiceAccountToken !== false) {
      problems.push(`${where(pod)}: mounts a service account token it has no use for`);
    }
    for (const container of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
      const at = where(pod, container);
      const own = container.securityContext ?? {};
      const effective = { ...podContext, ...own };
      if (effective.runAsNonRoot !== true) problems.push(`${at}: runAsNonRoot is not true`);
      if (typeof effective.runAsUser !== "number" || effective.runAsUser === 0) problems.push(`${at}: runAsUser is not a numeric non-root uid`);
      if (own.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
      if (own.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem is not true`);
      if (own.privileged === true) problems.push(`${at}: privileged`);
      if (!(own.capabilities?.drop ?? []).includes("ALL")) problems.push(`${at}: capabilities do not drop ALL`);
      if ((own.capabilities?.add ?? []).length > 0) problems.push(`${at}: adds capabilities ${own.capabilities!.add!.join(", ")}`);
      if (!["RuntimeDefault", "Localhost"].includes(effective.seccompProfile?.type ?? "")) problems.push(`${at}: seccompProfile is not RuntimeDefault`);
    }
  }
  return problems;
}

/** Every selector selects: Deployments their template, Services/PDBs/NetworkPolicies some pod; HPAs an existing Deployment. */
export function checkSelectors(rendered: Rendered): string[] {
  const problems: string[] = [];
  const pods = podTemplates(rendered);
  const podsIn = (namespace: string, selector: LabelSelector | undefined) => pods.filter((p) => p.namespace === namespace && selects(selector, p.labels));
  for (const pod of pods) {
    const selector = pod.workload.spec.selector;
    if (Object.keys(selector.matchLabels ?? {}).length + (selector.matchExpressions ?? []).length === 0) problems.push(`${where(pod)}: empty selector`);
    if (!selects(selector, pod.labels)) problems.push(`${where(pod)}: selector does not match its pod template's labels`);
  }
  for (const object of rendered.objects) {
    const namespace = object.metadata.namespace ?? "default";
    const at = `${object.kind} ${object.metadata.name}`;
    const spec = object.spec as Record<string, unknown> | undefined;
    if (object.kind === "Service") {
      const selector = spec?.selector as Labels | undefined;
      if (selector === undefined) continue;
      const selected = podsIn(namespace, { matchLabels: selector });
      if (selected.length === 0) problems.push(`${at}: selects no pod`);
      for (const port of (spec?.ports ?? []) as Array<{ name?: string; port: number; targetPort?: number | string }>) {
        if (port.name === undefined) problems.push(`${at}: port ${port.port} has no name`);
        const target = port.targetPort ?? port.port;
        for (const pod of selected) {
          if (!pod.spec.containers.some((c) => resolvePort(c, target) !== undefined)) problems.push(`${at}: targetPort ${target} is no port of ${where(pod)}`);
        }
      }
    }
    if (object.kind === "PodDisruptionBudget" && podsIn(namespace, spec?.selector as LabelSelector).length === 0) problems.push(`${at}: selects no pod`);
    if (object.kind === "NetworkPolicy" && podsIn(namespace, spec?.podSelector as LabelSelector).length === 0) problems.push(`${at}: selects no pod`);
    if (object.kind === "HorizontalPodAutoscaler") {
      if (object.apiVersion !== "autoscaling/v2") problems.push(`${at}: ${object.apiVersion}, not autoscaling/v2`);
      const target = spec?.scaleTargetRef as { kind: string; name: string };
      if (find(rendered, target.kind, target.name, namespace) === undefined) problems.push(`${at}: scales ${target.kind} ${target.name}, which is not rendered`);
    }
  }
  for (const pod of pods) {
    const replicated = (pod.workload.spec.replicas ?? 1) > 1;
    const hasBudget = rendered.objects.some(
      (o) => o.kind === "PodDisruptionBudget" && (o.metadata.namespace ?? "default") === pod.namespace && selects((o.spec as { selector: LabelSelector }).selector, pod.labels),
    );
    if (replicated && !hasBudget) problems.push(`${where(pod)}: several replicas and no PodDisruptionBudget`);
  }
  return problems;
}

/** Every object labelled part-of gatehouse; workloads and their pods labelled alike. */
export function checkLabels(rendered: Rendered): string[] {
  const problems: string[] = [];
  for (const object of rendered.objects) {
    if (object.metadata.labels?.[PART_OF] !== "gatehouse") problems.push(`${object.kind} ${object.metadata.name}: not labelled ${PART_OF}: gatehouse`);
    if (isWorkload(object)) {
      const podLabels = object.spec.template.metadata.labels ?? {};
      for (const key of ["app.kubernetes.io/name", "app.kubernetes.io/component", PART_OF]) {
        if (object.metadata.labels?.[key] === undefined) problems.push(`${object.kind} ${object.metadata.name}: no label ${key}`);
        else if (podLabels[key] !== object.metadata.labels[key]) problems.push(`${object.kind} ${object.metadata.name}: its pods' ${key} differs from its own`);
      }
    }
  }
  return problems;
}

/** The authz Deployment: 2+ replicas, autoscaled from 2, a PDB, a Service port named with appProtocol h2c. */
export function checkAuthzWorkload(rendered: Rendered): string[] {
  const problems: string[] = [];
  const authz = gatehouseContainers(rendered).filter((g) => g.role === "authz");
  if (authz.length !== 1) return [`expected one authz container in one Deployment, found ${authz.length}`];
  const { pod, container } = authz[0]!;
  const name = pod.workload.metadata.name;
  if ((pod.workload.spec.replicas ?? 1) < 2) problems.push(`Deployment ${name}: replicas ${pod.workload.spec.replicas ?? 1}, fewer than 2`);
  const hpa = rendered.objects.find((o) => o.kind === "HorizontalPodAutoscaler" && (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === name);
  if (hpa === undefined) problems.push(`Deployment ${name}: no HorizontalPodAutoscaler`);
  else if (((hpa.spec as { minReplicas?: number }).minReplicas ?? 1) < 2) problems.push(`HorizontalPodAutoscaler ${hpa.metadata.name}: minReplicas below 2`);
  const services = servicesOf(rendered, pod);
  if (services.length === 0) problems.push(`Deployment ${name}: no Service`);
  for (const service of services) {
    for (const port of (service.spec as { ports: Array<{ name?: string; appProtocol?: string; targetPort?: number | string; port: number }> }).ports) {
      if (port.appProtocol !== "kubernetes.io/h2c") problems.push(`Service ${service.metadata.name}: port ${port.name ?? port.port} has appProtocol ${port.appProtocol}, not kubernetes.io/h2c`);
      if (resolvePort(container, port.targetPort ?? port.port) === undefined) problems.push(`Service ${service.metadata.name}: port ${port.port} does not reach the authz container`);
    }
  }
  return problems;
}

/** A gatehouse container's configuration, loaded as the pod would load it. */
export interface LoadedConfig {
  at: string;
  env: Record<string, string>;
  authz?: AuthzConfig;
  gateway?: GatewayConfig;
}

/**
 * Loads every gatehouse container's configuration with the real loaders, from
 * the rendered ConfigMaps and Secrets, as mounted and as put in the
 * environment; problems are what the process would print before exiting.
 */
export function loadConfigs(rendered: Rendered): { configs: Map<GatehouseContainer, LoadedConfig>; problems: string[] } {
  const configs = new Map<GatehouseContainer, LoadedConfig>();
  const problems: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-pod-"));
  try {
    for (const [i, g] of gatehouseContainers(rendered).entries()) {
      const at = where(g.pod, g.container);
      try {
        const env = containerEnvironment(rendered, g.pod, g.container);
        const mounts = materializeMounts(rendered, g.pod, g.container, join(dir, String(i)));
        const path = env.GATEHOUSE_CONFIG;
        if (path === undefined) throw new Error("GATEHOUSE_CONFIG is not set");
        const text = readMounted(mounts, path);
        if (text === undefined) throw new Error(`GATEHOUSE_CONFIG ${path} is not in any volume mount`);
        const local = localizePaths(text, mounts);
        configs.set(g, g.role === "authz" ? { at, env, authz: parseAuthzConfig(local, env, path) } : { at, env, gateway: parseGatewayConfig(local, env, path) });
      } catch (error) {
        const message = error instanceof ConfigError ? error.problems.join("; ") : (error as Error).message;
        problems.push(`${at}: ${message}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { configs, problems };
}

/** The Service and port an http(s) endpoint URL names, looked up like cluster DNS would. */
function serviceOf(rendered: Rendered, url: string, fromNamespace: string): { service: K8sObject; port: number } | string {
  const parsed = new URL(url);
  const labels = parsed.hostname.split(".");
  const namespace = labels.length > 1 ? labels[1]! : fromNamespace;
  const service = find(rendered, "Service", labels[0]!, namespace);
  if (service === undefined) return `${url}: no Service ${labels[0]} in namespace ${namespace}`;
  const port = parsed.port === "" ? (parsed.protocol === "https:" ? 443 : 80) : Number(parsed.port);
  if (!(service.spec as { ports: Array<{ port: number }> }).ports.some((p) => p.port === port)) return `${url}: Service ${service.metadata.name} has no port ${port}`;
  return { service, port };
}

/**
 * Each gatehouse container's configuration is valid where it runs: it listens
 * on the pod's interfaces at its container port; its probes ask its real
 * health paths there; the gateways' authz endpoints are the authz Service;
 * secrets pair up between gateways and the authz service; signing keys load;
 * Redis is the bundled one (dev) or Sentinel/Cluster with a password (no
 * bundled one); and the grace period outlasts preStop plus the drain.
 */
export async function checkGatehouseConfigs(rendered: Rendered): Promise<string[]> {
  const { configs, problems } = loadConfigs(rendered);
  const authzConfigs = [...configs.values()].flatMap((c) => (c.authz === undefined ? [] : [c.authz]));
  const authzPods = gatehouseContainers(rendered).filter((g) => g.role === "authz").map((g) => g.pod);
  const redisPods = podTemplates(rendered).filter((p) => p.labels["app.kubernetes.io/name"] === "redis");

  for (const [g, loaded] of configs) {
    const { at } = loaded;
    const listen = loaded.authz?.listen ?? loaded.gateway!.listen;
    const drainTimeoutMs = loaded.authz?.drainTimeoutMs ?? loaded.gateway!.drainTimeoutMs;
    if (LOOPBACK.has(listen.host)) problems.push(`${at}: listens on ${listen.host}, which neither the Service nor the kubelet can reach`);
    if (resolvePort(g.container, listen.port) === undefined) problems.push(`${at}: listens on port ${listen.port}, which the container does not declare`);

    const expected =
      g.role === "authz"
        ? { livenessProbe: AUTHZ_PROBE_PATHS.liveness, readinessProbe: AUTHZ_PROBE_PATHS.readiness, startupProbe: AUTHZ_PROBE_PATHS.liveness }
        : { livenessProbe: loaded.gateway!.paths.healthz, readinessProbe: loaded.gateway!.paths.readyz, startupProbe: loaded.gateway!.paths.healthz };
    for (const [kind, path] of Object.entries(expected) as Array<[keyof typeof expected, string]>) {
      const probe = g.container[kind];
      if (probe === undefined) {
        if (kind !== "startupProbe") problems.push(`${at}: no ${kind}`);
        continue;
      }
      if (probe.httpGet?.path !== path) problems.push(`${at}: ${kind} asks ${probe.httpGet?.path ?? "(not HTTP)"}, the process answers ${path}`);
      if (probe.httpGet !== undefined && resolvePort(g.container, probe.httpGet.port) !== listen.port) problems.push(`${at}: ${kind} asks port ${probe.httpGet.port}, the process listens on ${listen.port}`);
    }

    const grace = g.pod.spec.terminationGracePeriodSeconds ?? 30;
    const needed = preStopSeconds(g.container) + drainTimeoutMs / 1000;
    if (!(grace > needed)) problems.push(`${at}: terminationGracePeriodSeconds ${grace} does not outlast preStop + drain (${needed} s)`);

    if (loaded.authz !== undefined) {
      const config = loaded.authz;
      if (config.signingKeys === undefined) {
        // Self-rotating keys are shared through Redis; config.ts already refuses them on Redis without a KEK.
        if (config.keyRotation === undefined) problems.push(`${at}: no signing keys (authz.signingKeys or authz.keyRotation): each replica would sign with a throwaway key of its own`);
      } else {
        try {
          await createKeyRing({ jwks: config.signingKeys.jwks, activeKid: config.signingKeys.activeKid, issuer: config.issuer });
        } catch (error) {
          problems.push(`${at}: signing keys do not load: ${(error as Error).message}`);
        }
      }
      if (config.serviceCredential === undefined) problems.push(`${at}: no service credential: the gateways could not call Authorize or Decide`);
      const redis = config.redis;
      if (redis === undefined) problems.push(`${at}: no Redis: an in-memory store per replica`);
      else if (redisPods.length > 0) {
        if (redis.kind !== "url") problems.push(`${at}: a Redis is bundled but the configuration uses ${redis.kind}`);
        else {
          const target = serviceOf(rendered, redis.url.replace(/^rediss?:/, "http:"), g.pod.namespace);
          if (typeof target === "string") problems.push(`${at}: redis ${target}`);
          else if (!redisPods.some((p) => selects({ matchLabels: (target.service.spec as { selector: Labels }).selector }, p.labels))) problems.push(`${at}: redis URL's Service does not select the Redis pods`);
        }
      } else {
        if (redis.kind === "url") problems.push(`${at}: no Redis is bundled, and the configuration names a single URL rather than Sentinel or Cluster`);
        if (redis.kind !== "url" && redis.password === undefined) problems.push(`${at}: the external Redis has no password`);
      }
    }

    if (loaded.gateway !== undefined) {
      const config = loaded.gateway;
      for (const endpoint of config.authz.endpoints) {
        const target = serviceOf(rendered, endpoint, g.pod.namespace);
        if (typeof target === "string") problems.push(`${at}: authz endpoint ${target}`);
        else if (!authzPods.some((p) => selects({ matchLabels: (target.service.spec as { selector: Labels }).selector }, p.labels))) problems.push(`${at}: authz endpoint ${endpoint} is not the authz service`);
      }
      for (const authz of authzConfigs) {
        const client = authz.clients.get(config.authz.clientId);
        if (client === undefined) problems.push(`${at}: client ${config.authz.clientId} is not registered with the authz service`);
        else {
          if (!client.introspectAnyToken) problems.push(`${at}: client ${client.id} may not introspect other clients' tokens`);
          if (!client.secretHashes.includes(hashSecret(config.authz.clientSecret))) problems.push(`${at}: client ${client.id}'s secret does not match the secret hash the authz service holds`);
        }
        if (config.authz.serviceCredential !== undefined && authz.serviceCredential !== config.authz.serviceCredential) {
          problems.push(`${at}: service credential differs from the authz service's`);
        }
      }
    }
  }
  return problems;
}

/**
 * NetworkPolicies: only gateways and labelled internal clients reach the authz
 * service, only the authz service reaches Redis, every pod is isolated, and
 * each path gatehouse needs (gateway -> authz, authz -> Redis, DNS) is open.
 */
export function checkNetworkPolicies(rendered: Rendered): string[] {
  const problems: string[] = [];
  const pods = podTemplates(rendered);
  const gatehouse = gatehouseContainers(rendered);
  const authz = gatehouse.filter((g) => g.role === "authz");
  const gatewayPods = [...new Set(gatehouse.filter((g) => g.role === "gateway").map((g) => g.pod))];
  const redisPods = pods.filter((p) => p.labels["app.kubernetes.io/name"] === "redis");
  const intruder: Peer = { namespace: rendered.namespace, labels: { "app.kubernetes.io/name": "intruder" } };
  const elsewhere: Peer = { namespace: "some-team", labels: { "app.kubernetes.io/name": "some-service" } };
  const internalClient: Peer = { namespace: "some-team", labels: { "app.kubernetes.io/name": "some-service", "gatehouse.io/authz-client": "true" } };

  for (const pod of pods) {
    const applying = networkPolicies(rendered).filter((p) => p.namespace === pod.namespace && selects(p.spec.podSelector, pod.labels));
    for (const direction of ["Ingress", "Egress"]) {
      if (!applying.some((p) => policyTypes(p.spec).includes(direction))) problems.push(`${where(pod)}: no NetworkPolicy restricts its ${direction.toLowerCase()}`);
    }
  }
  for (const { pod } of gatehouse) {
    if (!egressAllowedAnywhere(rendered, peerOf(pod), 53, "UDP")) problems.push(`${where(pod)}: cannot reach DNS`);
  }

  for (const { pod, container } of authz) {
    const port = container.ports?.[0]?.containerPort ?? 0;
    const target = peerOf(pod);
    for (const gateway of gatewayPods) if (!connectionAllowed(rendered, peerOf(gateway), target, port)) problems.push(`${where(gateway)} cannot reach the authz service`);
    if (!connectionAllowed(rendered, internalClient, target, port)) problems.push("a pod labelled gatehouse.io/authz-client in another namespace cannot reach the authz service");
    // What must not get in is judged by the authz pods' own policies alone.
    const denied = { ingressOnly: true };
    for (const [name, peer] of [["an unlabelled pod of the namespace (intruder)", intruder], ["an unlabelled pod of another namespace", elsewhere]] as const) {
      if (connectionAllowed(rendered, peer, target, port, denied)) problems.push(`${name} reaches the authz service`);
    }
    for (const redis of redisPods) if (connectionAllowed(rendered, peerOf(redis), target, port, denied)) problems.push("the Redis pod reaches the authz service");
    for (const other of [8080, 9229, 22]) if (connectionAllowed(rendered, internalClient, target, other, denied)) problems.push(`the authz pods accept port ${other}`);
  }

  for (const redis of redisPods) {
    const port = redis.spec.containers[0]?.ports?.[0]?.containerPort ?? 6379;
    for (const { pod } of authz) if (!connectionAllowed(rendered, peerOf(pod), peerOf(redis), port)) problems.push("the authz service cannot reach Redis");
    for (const [name, peer] of [
      ...gatewayPods.map((p) => [where(p), peerOf(p)] as const),
      ["an unlabelled pod of the namespace (intruder)", intruder] as const,
      ["a labelled internal client", internalClient] as const,
    ]) {
      if (connectionAllowed(rendered, peer, peerOf(redis), port, { ingressOnly: true })) problems.push(`${name} reaches redis`);
    }
  }
  if (redisPods.length === 0) {
    // An external Redis: the authz service must still be let out to it.
    for (const { pod } of authz) {
      if (!egressAllowedAnywhere(rendered, peerOf(pod), 6379, "TCP") || !egressAllowedAnywhere(rendered, peerOf(pod), 26379, "TCP")) problems.push(`${where(pod)}: cannot reach an external Redis (6379, 26379)`);
    }
  }
  return problems;
}

/**
 * The sidecar pattern: in a pod with a gateway container and an app, the app
 * declares no port and listens on loopback; every route of the gateway goes
 * to it on loopback; Services target the gateway's port, never the app's.
 */
export function checkSidecars(rendered: Rendered): string[] {
  const problems: string[] = [];
  const { configs } = loadConfigs(rendered);
  const sidecars = gatehouseContainers(rendered).filter((g) => g.role === "gateway" && g.pod.spec.containers.length > 1);
  if (sidecars.length === 0) return ["no pod has the gateway as a sidecar"];
  for (const g of sidecars) {
    const apps = g.pod.spec.containers.filter((c) => c !== g.container);
    const appPorts = new Set<number>();
    for (const app of apps) {
      const at = where(g.pod, app);
      if ((app.ports ?? []).length > 0) problems.push(`${at}: declares ports; only the gateway sidecar's port may be open`);
      const env = Object.fromEntries((app.env ?? []).map((e) => [e.name, e.value]));
      if (!LOOPBACK.has(env.LISTEN_HOST ?? "")) problems.push(`${at}: LISTEN_HOST is ${env.LISTEN_HOST}, not a loopback address`);
      appPorts.add(Number(env.LISTEN_PORT));
    }
    const config = [...configs].find(([key]) => key.pod.workload.metadata.name === g.pod.workload.metadata.name && key.container.name === g.container.name)?.[1].gateway;
    if (config === undefined) problems.push(`${where(g.pod, g.container)}: configuration does not load`);
    else {
      const upstreams = [...config.routes.map((r) => r.upstream), config.guard.defaultUpstream, config.guard.unmatched.kind === "passthrough" ? config.guard.unmatched.upstream : undefined];
      if (config.routes.length === 0) problems.push(`${where(g.pod, g.container)}: guards no route`);
      // A guard needs no power to assert who a resource owner is; a compromised app pod must not gain it.
      if (config.authz.serviceCredential !== undefined) problems.push(`${where(g.pod, g.container)}: a sidecar holds the service credential (it could call Decide)`);
      if (config.requireHttps && config.trustedProxies.length === 0) {
        problems.push(`${where(g.pod, g.container)}: requireHttps with no trusted proxy refuses every request that arrives from the ingress over plain HTTP`);
      }
      for (const upstream of upstreams) {
        if (upstream === undefined) continue;
        const url = new URL(upstream);
        if (!LOOPBACK.has(url.hostname)) problems.push(`${where(g.pod, g.container)}: upstream ${upstream} is not on loopback`);
        if (!appPorts.has(Number(url.port))) problems.push(`${where(g.pod, g.container)}: upstream ${upstream} is not the app's LISTEN_PORT`);
      }
    }
    const services = servicesOf(rendered, g.pod);
    if (services.length === 0) problems.push(`${where(g.pod)}: no Service`);
    for (const service of services) {
      for (const port of (service.spec as { ports: Array<{ port: number; targetPort?: number | string }> }).ports) {
        if (resolvePort(g.container, port.targetPort ?? port.port) === undefined) problems.push(`Service ${service.metadata.name}: port ${port.port} does not target the gateway sidecar`);
      }
    }
    for (const port of appPorts) {
      const outsider: Peer = { namespace: g.pod.namespace, labels: { "app.kubernetes.io/name": "intruder" } };
      if (connectionAllowed(rendered, outsider, peerOf(g.pod), port, { ingressOnly: true })) problems.push(`${where(g.pod)}: NetworkPolicies let other pods connect to the app's port ${port}`);
    }
  }
  return problems;
}

/** Gatehouse containers run as the image's own user, so file permissions in the image hold. */
export function checkImageUser(rendered: Rendered, dockerfileUid: number): string[] {
  return gatehouseContainers(rendered).flatMap(({ pod, container }) => {
    const uid = container.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser;
    return uid === dockerfileUid ? [] : [`${where(pod, container)}: runs as uid ${uid}, the image's USER is ${dockerfileUid}`];
  });
}
