import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { AuthorizationService } from "../../../gen/gatehouse/v1/authorization_service_pb.js";
import { SessionService } from "../../../gen/gatehouse/v1/session_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../../gen/grpc/health/v1/health_pb.js";
import type { Health as HealthState } from "../health.js";

/** The services health can be asked about; "" is the server as a whole. */
const KNOWN = new Set(["", AuthorizationService.typeName, SessionService.typeName, Health.typeName]);

/**
 * grpc.health.v1.Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md):
 * Check answers NOT_FOUND for an unknown service; Watch sends the status at
 * once and again whenever it changes, SERVICE_UNKNOWN for an unknown service.
 */
export function createHealthService(options: { health: HealthState; watchIntervalMs: number }): ServiceImpl<typeof Health> {
  const current = async () => ((await options.health.status()) === "SERVING" ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check(request) {
      if (!KNOWN.has(request.service)) throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
      return { status: await current() };
    },
    async *watch(request, context) {
      if (!KNOWN.has(request.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        return;
      }
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const status = await current();
        if (status !== last) {
          last = status;
          yield { status };
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.watchIntervalMs);
          context.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    },
  };
}
