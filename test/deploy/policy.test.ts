import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { finalUid } from "./dockerfile.js";
import {
  checkAuthzWorkload,
  checkContainers,
  checkGatehouseConfigs,
  checkImageUser,
  checkLabels,
  checkNetworkPolicies,
  checkSecurity,
  checkSelectors,
  checkSidecars,
} from "./policy.js";
import { OVERLAYS, ROOT, isWorkload, renderOverlaysBeforeAll, type Container, type K8sObject, type OverlayName, type Rendered, type Workload } from "./support.js";

const overlayNames = Object.keys(OVERLAYS) as OverlayName[];
const IMAGE_UID = finalUid(readFileSync(join(ROOT, "Dockerfile"), "utf8"));

const rendered = renderOverlaysBeforeAll();

describe.each(overlayNames)("overlays/%s", (overlay) => {
  const r = () => rendered(overlay);

  it("every container: image pinned to an exact version, CPU and memory requests and limits, liveness and readiness probes on its declared ports", () => {
    expect(checkContainers(r())).toEqual([]);
  });

  it("every container runs as a numeric non-root user, read-only root, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault; no host namespaces, no service account token", () => {
    expect(checkSecurity(r())).toEqual([]);
  });

  it("every selector selects: Deployments their pods; Services, PodDisruptionBudgets and NetworkPolicies some pod; Service ports named and reaching a container port; HPAs an existing Deployment", () => {
    expect(checkSelectors(r())).toEqual([]);
  });

  it("every object is labelled part-of gatehouse, and each workload's pods carry its name and component labels", () => {
    expect(checkLabels(r())).toEqual([]);
  });

  it("the authz service: 2+ replicas, an autoscaling/v2 HPA from 2, a PodDisruptionBudget, its Service port with appProtocol kubernetes.io/h2c", () => {
    expect(checkAuthzWorkload(r())).toEqual([]);
  });

  it("every gatehouse process loads its configuration as its pod would; probes ask its real health paths on the port it listens on; gateways reach the authz Service with matching secrets; Redis as the overlay means; grace outlasts preStop + drain", async () => {
    expect(await checkGatehouseConfigs(r())).toEqual([]);
  });

  it("NetworkPolicies: every pod isolated; only gateways and labelled internal clients reach the authz service; only the authz service reaches Redis; DNS and the needed paths open", () => {
    expect(checkNetworkPolicies(r())).toEqual([]);
  });

  it("the sidecar pattern: the app listens on loopback with no port of its own, every route goes to it there, the Service targets the gateway sidecar", () => {
    expect(checkSidecars(r())).toEqual([]);
  });

  it("gatehouse containers run as the image's USER", () => {
    expect(checkImageUser(r(), IMAGE_UID)).toEqual([]);
  });
});

// ------------------------------------------------- each check can fail

const workload = (r: Rendered, name: string): Workload => {
  const found = r.objects.find((o): o is Workload => isWorkload(o) && o.metadata.name === name);
  if (found === undefined) throw new Error(`no workload ${name}`);
  return found;
};
const container = (r: Rendered, name: string, containerName: string): Container => {
  const found = workload(r, name).spec.template.spec.containers.find((c) => c.name === containerName);
  if (found === undefined) throw new Error(`no container ${containerName} in ${name}`);
  return found;
};
/** An object by kind and name; generated ones by the name before kustomize's hash suffix. */
const object = (r: Rendered, kind: string, name: string): K8sObject & { spec: any; data: any } => {
  const found = r.objects.find((o) => o.kind === kind && (o.metadata.name === name || o.metadata.name.replace(/-[a-z0-9]{10}$/, "") === name));
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found as K8sObject & { spec: any; data: any };
};
/** Edits a file of a rendered ConfigMap, failing if the text to replace is not there. */
const editConfig = (r: Rendered, name: string, from: string, to: string) => {
  const configMap = object(r, "ConfigMap", name);
  const [key, text] = Object.entries(configMap.data as Record<string, string>)[0]!;
  if (!text.includes(from)) throw new Error(`${name} has no ${JSON.stringify(from)}`);
  configMap.data[key] = text.replace(from, to);
};
const remove = (r: Rendered, kind: string, name: string) => {
  const target = object(r, kind, name);
  r.objects.splice(r.objects.indexOf(target), 1);
};

type Check = (r: Rendered) => string[] | Promise<string[]>;
const MUTATIONS: Array<[string, (r: Rendered) => void, Check, RegExp]> = [
  ["an image on latest", (r) => void (container(r, "gatehouse-authz", "authz").image = "gatehouse:latest"), checkContainers, /uses latest/],
  ["an untagged image", (r) => void (container(r, "gatehouse-redis", "redis").image = "redis"), checkContainers, /has no tag/],
  ["a floating tag", (r) => void (container(r, "notes-api", "app").image = "node:20-bookworm-slim"), checkContainers, /not an exact version/],
  ["no memory limit", (r) => void delete container(r, "gatehouse-gateway", "gateway").resources!.limits!.memory, checkContainers, /no resources\.limits\.memory/],
  ["no CPU request", (r) => void delete container(r, "notes-api", "gateway").resources!.requests!.cpu, checkContainers, /no resources\.requests\.cpu/],
  ["no readiness probe", (r) => void delete container(r, "gatehouse-redis", "redis").readinessProbe, checkContainers, /no readinessProbe/],
  ["no liveness probe", (r) => void delete container(r, "notes-api", "app").livenessProbe, checkContainers, /no livenessProbe/],
  ["a probe on an undeclared port", (r) => void (container(r, "gatehouse-authz", "authz").livenessProbe!.httpGet!.port = 9999), checkContainers, /port 9999 is not a port/],
  ["a writable root filesystem", (r) => void (container(r, "notes-api", "app").securityContext!.readOnlyRootFilesystem = false), checkSecurity, /readOnlyRootFilesystem/],
  ["privilege escalation", (r) => void (container(r, "gatehouse-gateway", "gateway").securityContext!.allowPrivilegeEscalation = true), checkSecurity, /allowPrivilegeEscalation/],
  ["capabilities kept", (r) => void (container(r, "gatehouse-redis", "redis").securityContext!.capabilities = { drop: [] }), checkSecurity, /do not drop ALL/],
  [
    "a container that may run as root",
    (r) => {
      delete container(r, "gatehouse-authz", "authz").securityContext!.runAsNonRoot;
      workload(r, "gatehouse-authz").spec.template.spec.securityContext!.runAsNonRoot = false;
    },
    checkSecurity,
    /runAsNonRoot is not true/,
  ],
  [
    "no seccomp profile",
    (r) => {
      delete container(r, "gatehouse-gateway", "gateway").securityContext!.seccompProfile;
      delete workload(r, "gatehouse-gateway").spec.template.spec.securityContext!.seccompProfile;
    },
    checkSecurity,
    /seccompProfile/,
  ],
  ["a mounted service account token", (r) => void delete workload(r, "notes-api").spec.template.spec.automountServiceAccountToken, checkSecurity, /service account token/],
  ["a Service that selects nothing", (r) => void (object(r, "Service", "gatehouse-gateway").spec.selector["app.kubernetes.io/component"] = "gateways"), checkSelectors, /Service gatehouse-gateway: selects no pod/],
  ["a Deployment selector that misses its pods", (r) => void (workload(r, "gatehouse-authz").spec.selector.matchLabels!.tier = "backend"), checkSelectors, /does not match its pod template/],
  ["a Service port without a name", (r) => void delete object(r, "Service", "gatehouse-authz").spec.ports[0].name, checkSelectors, /port 50051 has no name/],
  ["a PodDisruptionBudget that selects nothing", (r) => void (object(r, "PodDisruptionBudget", "gatehouse-authz").spec.selector.matchLabels["app.kubernetes.io/name"] = "gatehous"), checkSelectors, /PodDisruptionBudget gatehouse-authz: selects no pod/],
  ["an HPA on a missing Deployment", (r) => void (object(r, "HorizontalPodAutoscaler", "gatehouse-authz").spec.scaleTargetRef.name = "gatehouse-authzz"), checkSelectors, /not rendered/],
  ["an unlabelled object", (r) => void delete object(r, "Service", "gatehouse-authz").metadata.labels!["app.kubernetes.io/part-of"], checkLabels, /Service gatehouse-authz: not labelled/],
  ["one authz replica", (r) => void (workload(r, "gatehouse-authz").spec.replicas = 1), checkAuthzWorkload, /fewer than 2/],
  ["an HPA that scales authz to one", (r) => void (object(r, "HorizontalPodAutoscaler", "gatehouse-authz").spec.minReplicas = 1), checkAuthzWorkload, /minReplicas below 2/],
  ["the authz Service without appProtocol h2c", (r) => void delete object(r, "Service", "gatehouse-authz").spec.ports[0].appProtocol, checkAuthzWorkload, /not kubernetes\.io\/h2c/],
  ["an authz readiness probe on a path it does not serve", (r) => void (container(r, "gatehouse-authz", "authz").readinessProbe!.httpGet!.path = "/ready"), checkGatehouseConfigs, /asks \/ready, the process answers \/readyz/],
  ["a gateway liveness probe on a path it does not serve", (r) => void (container(r, "gatehouse-gateway", "gateway").livenessProbe!.httpGet!.path = "/health"), checkGatehouseConfigs, /asks \/health, the process answers \/healthz/],
  ["the authz service listening on loopback", (r) => editConfig(r, "gatehouse-config", "host: 0.0.0.0\n  port: 50051", "host: 127.0.0.1\n  port: 50051"), checkGatehouseConfigs, /listens on 127\.0\.0\.1/],
  ["a container port the process does not listen on", (r) => void (container(r, "gatehouse-gateway", "gateway").ports![0]!.containerPort = 8081), checkGatehouseConfigs, /listens on port 8080, which the container does not declare/],
  ["a grace period shorter than preStop + drain", (r) => void (workload(r, "gatehouse-authz").spec.template.spec.terminationGracePeriodSeconds = 12), checkGatehouseConfigs, /does not outlast preStop \+ drain \(15 s\)/],
  [
    "the public gateway given the sidecar's client secret",
    (r) => {
      const other = object(r, "Secret", "notes-api-gateway-client").metadata.name;
      container(r, "gatehouse-gateway", "gateway").env!.find((e) => e.name === "GATEHOUSE_GATEWAY_CLIENT_SECRET")!.valueFrom!.secretKeyRef!.name = other;
    },
    checkGatehouseConfigs,
    /client gatehouse-gateway's secret does not match/,
  ],
  ["a Secret key that is not rendered", (r) => void (container(r, "gatehouse-authz", "authz").env!.find((e) => e.name === "NOTES_API_CLIENT_SECRET_HASH")!.valueFrom!.secretKeyRef!.key = "notes"), checkGatehouseConfigs, /not rendered/],
  ["signing keys that are not a JWK Set", (r) => void (object(r, "Secret", "gatehouse-signing-keys").data["jwks.json"] = Buffer.from("{}").toString("base64")), checkGatehouseConfigs, /signing keys do not load/],
  ["a sidecar whose authz endpoint is no Service", (r) => editConfig(r, "notes-api-gateway-config", "http://gatehouse-authz:50051", "http://gatehouse-auth:50051"), checkGatehouseConfigs, /no Service gatehouse-auth /],
  ["a Redis URL that names no Service", (r) => editConfig(r, "gatehouse-config", "redis://gatehouse-redis:6379", "redis://redis:6379"), checkGatehouseConfigs, /no Service redis /],
  [
    "no bundled Redis and a single Redis URL",
    (r) => {
      remove(r, "Deployment", "gatehouse-redis");
      remove(r, "NetworkPolicy", "gatehouse-redis");
    },
    checkGatehouseConfigs,
    /names a single URL rather than Sentinel or Cluster/,
  ],
  ["the authz service open to every pod", (r) => void (object(r, "NetworkPolicy", "gatehouse-authz").spec.ingress = [{}]), checkNetworkPolicies, /intruder\) reaches the authz service/],
  ["the authz service open to any labelled pod's other ports", (r) => void delete object(r, "NetworkPolicy", "gatehouse-authz").spec.ingress[0].ports, checkNetworkPolicies, /accept port 8080/],
  ["no NetworkPolicy for Redis", (r) => remove(r, "NetworkPolicy", "gatehouse-redis"), checkNetworkPolicies, /reaches redis/],
  ["Redis open to every pod of the namespace", (r) => void (object(r, "NetworkPolicy", "gatehouse-redis").spec.ingress[0].from = [{ podSelector: {} }]), checkNetworkPolicies, /gatehouse-gateway reaches redis/],
  ["the authz service shut out of Redis", (r) => void object(r, "NetworkPolicy", "gatehouse-authz").spec.egress.pop(), checkNetworkPolicies, /cannot reach Redis/],
  ["the gateway shut out of DNS", (r) => void object(r, "NetworkPolicy", "gatehouse-gateway").spec.egress.shift(), checkNetworkPolicies, /cannot reach DNS/],
  ["the gateway shut out of the authz service", (r) => void object(r, "NetworkPolicy", "gatehouse-gateway").spec.egress.pop(), checkNetworkPolicies, /gatehouse-gateway cannot reach the authz service/],
  ["the app declaring a port", (r) => void (container(r, "notes-api", "app").ports = [{ name: "http", containerPort: 3000 }]), checkSidecars, /declares ports/],
  ["the app listening on every interface", (r) => void (container(r, "notes-api", "app").env!.find((e) => e.name === "LISTEN_HOST")!.value = "0.0.0.0"), checkSidecars, /not a loopback address/],
  ["the Service targeting the app", (r) => void (object(r, "Service", "notes-api").spec.ports[0].targetPort = 3000), checkSidecars, /does not target the gateway sidecar/],
  ["a route to an upstream off the pod", (r) => editConfig(r, "notes-api-gateway-config", "upstream: http://127.0.0.1:3000", "upstream: http://notes-db:3000"), checkSidecars, /http:\/\/notes-db:3000 is not on loopback/],
  ["the app's port open to other pods", (r) => void delete object(r, "NetworkPolicy", "notes-api").spec.ingress[0].ports, checkSidecars, /connect to the app's port 3000/],
  [
    "a uid other than the image's",
    (r) => {
      workload(r, "gatehouse-authz").spec.template.spec.securityContext!.runAsUser = 1000;
    },
    (r) => checkImageUser(r, IMAGE_UID),
    /runs as uid 1000, the image's USER is 10001/,
  ],
];

describe("each check catches a broken manifest (the dev overlay, broken one way at a time)", () => {
  it.each(MUTATIONS)("%s", async (_name, mutate, check, expected) => {
    const broken = structuredClone(rendered("dev"));
    mutate(broken);
    expect((await check(broken)).join("\n")).toMatch(expected);
  });
});
