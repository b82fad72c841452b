import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/gatehouse/v1/admin_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { TENANT_HEADER } from "../../contract/metadata.js";

/** Admin credentials of the tests (two, as during a rotation). */
export const ADMIN_SECRETS = {
  ops: "admin-ops-credential-0123456789abcdefghijklmnop",
  ci: "admin-ci-credential-0123456789abcdefghijklmnopq",
} as const;

/** The config patch that turns the admin API on with both credentials (secrets from the environment). */
export function withAdminCredentials(file: Record<string, unknown>): void {
  const authz = file.authz as Record<string, unknown>;
  authz.admin = {
    credentials: [
      { name: "ops", secret: { env: "TEST_ADMIN_OPS" } },
      { name: "ci", secret: { env: "TEST_ADMIN_CI" } },
    ],
  };
}

export const ADMIN_ENV = { TEST_ADMIN_OPS: ADMIN_SECRETS.ops, TEST_ADMIN_CI: ADMIN_SECRETS.ci };

export type AdminClient = Client<typeof AdminService>;

/** An AdminService client over Connect (HTTP/2) with a credential and, optionally, a tenant. */
export function adminClient(baseUrl: string, credential: string | undefined, tenant?: string): AdminClient {
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "2",
    interceptors: [
      (next) => (request) => {
        if (credential !== undefined) request.header.set("authorization", `Bearer ${credential}`);
        if (tenant !== undefined) request.header.set(TENANT_HEADER, tenant);
        return next(request);
      },
    ],
  });
  return createClient(AdminService, transport);
}

/** A failed call's status, message and field violations (google.rpc.BadRequest). */
export async function adminFailure(call: Promise<unknown>): Promise<{ code: Code; message: string; violations: Array<{ field: string; description: string }> }> {
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    const violations = connectError.findDetails(BadRequestSchema).flatMap((detail) => detail.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
    return { code: connectError.code, message: connectError.rawMessage, violations };
  }
  throw new Error("expected the call to fail, and it succeeded");
}
