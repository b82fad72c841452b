import type { ConnectRouter } from "@connectrpc/connect";
import { AdminService } from "../../gen/gatehouse/v1/admin_service_pb.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { SessionService } from "../../gen/gatehouse/v1/session_service_pb.js";
import { RegistrationService } from "../../gen/gatehouse/v1/registration_service_pb.js";
import { createRegistrationService } from "./rpc/registration-service.js";
import { registration, type ServiceRegistration } from "./transport/connect-unary.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import type { AuthzDeps } from "./deps.js";
import type { CallerCheck } from "./rpc/caller.js";
import { createAdminApi } from "./admin/admin-api.js";
import { userRightsCalls } from "./admin/user-rights-calls.js";
import { createAdminService } from "./rpc/admin-service.js";
import { createAuthorizationService } from "./rpc/authorization-service.js";
import { createHealthService } from "./rpc/health-service.js";
import { createSessionService } from "./rpc/session-service.js";

/** Who the gateway is: its credentials in force (a reload may change them). */
export function callerCheckOf(deps: AuthzDeps): CallerCheck {
  return { serviceCredentials: () => deps.config.serviceCredentials };
}

/** The services the authz process serves. */
export function createServices(deps: AuthzDeps): ServiceRegistration[] {
  const check = callerCheckOf(deps);
  const tenants = { server: deps.tenantServer, ofIssuer: deps.tenantOfIssuer, subscribeAll: deps.stores.subscribeAll };
  return [
    registration(AuthorizationService, createAuthorizationService({ ...check, tenants, heartbeatSeconds: () => deps.config.revocationHeartbeatSeconds })),
    registration(SessionService, createSessionService({ ...check, tenants })),
    registration(RegistrationService, createRegistrationService({ ...check, tenants })),
    // Off (every call Unauthenticated) unless authz.admin.credentials lists one (issue 12).
    registration(
      AdminService,
      createAdminService({
        credentials: () => deps.config.admin.credentials,
        tenantContext: deps.tenantContext,
        requireHttps: () => deps.config.requireHttps,
        api: createAdminApi({ log: deps.log, rights: userRightsCalls }),
      }),
    ),
    registration(Health, createHealthService({ health: deps.health, watchIntervalMs: 1_000 })),
  ];
}

/** Registers the services with a ConnectRouter; nothing else. */
export function createRoutes(services: readonly ServiceRegistration[]) {
  return (router: ConnectRouter) => {
    for (const service of services) service.register(router);
  };
}
