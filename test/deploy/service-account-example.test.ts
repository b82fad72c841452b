import { readFileSync } from "node:fs";
import { join } from "node:path";
import { apps, v1 } from "kubernetes-models";
import { describe, expect, it } from "vitest";
import { parseAuthzConfig } from "../../services/authz/config.js";
import { DEPLOY, parseObjects } from "./support.js";

/** deploy/examples/service-account-client: what the README tells people to copy is valid, and says what gatehouse expects. */
const EXAMPLE = join(DEPLOY, "examples", "service-account-client");

describe("deploy/examples/service-account-client", () => {
  const objects = parseObjects(readFileSync(join(EXAMPLE, "workload.yaml"), "utf8"));
  const config = parseAuthzConfig(readFileSync(join(EXAMPLE, "gatehouse-config.yaml"), "utf8"), {});

  it("the workload is a valid ServiceAccount and Deployment (Kubernetes API schema)", () => {
    expect(objects.map((o) => o.kind)).toEqual(["ServiceAccount", "Deployment"]);
    new v1.ServiceAccount(objects[0] as never).validate();
    new apps.v1.Deployment(objects[1] as never).validate();
  });

  it("the projected token's audience is what gatehouse expects, and its service account is the client's", () => {
    const deployment = objects[1] as unknown as { spec: { template: { spec: { serviceAccountName: string; volumes: Array<{ projected?: { sources: Array<{ serviceAccountToken?: { audience: string } }> } }> } } } };
    const pod = deployment.spec.template.spec;
    const audience = pod.volumes.flatMap((v) => v.projected?.sources ?? []).find((source) => source.serviceAccountToken)!.serviceAccountToken!.audience;
    expect(config.serviceAccountIssuers![0]!.audience).toBe(audience);
    const worker = config.clients.get("worker")!;
    expect(worker.service?.serviceAccount).toEqual({ issuer: config.serviceAccountIssuers![0]!.issuer, subject: `system:serviceaccount:shop:${pod.serviceAccountName}` });
    expect([...worker.grantTypes]).toEqual(["client_credentials"]);
  });
});
