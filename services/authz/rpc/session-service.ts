import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { SessionService } from "../../../gen/gatehouse/v1/session_service_pb.js";
import { clientAddress, requireGateway, type CallerCheck } from "./caller.js";
import { serverFor, type TenantDirectory } from "./tenant.js";

/**
 * The login page's RPCs; gateway only. Sessions live in the store of the
 * call's tenant: a session token of one tenant is unknown to every other.
 */
export function createSessionService(options: CallerCheck & { tenants: TenantDirectory }): ServiceImpl<typeof SessionService> {
  const server = (context: HandlerContext) => serverFor(context, options.tenants).server;
  return {
    async login(request, context) {
      requireGateway(context, options);
      const session = await server(context).login({
        username: request.username,
        password: request.password,
        clientAddress: request.clientAddress !== "" ? request.clientAddress : clientAddress(context, options),
      });
      return Object.assign({}, session, { authTime: BigInt(session.authTime), expiresIn: BigInt(session.expiresIn) });
    },

    async getSession(request, context) {
      requireGateway(context, options);
      const session = await server(context).getSession(request.sessionToken);
      if (session === undefined) return { active: false };
      return { active: true, subject: session.subject, authTime: BigInt(session.authTime), sid: session.sid };
    },

    async planLogout(request, context) {
      requireGateway(context, options);
      return server(context).planLogout({
        idTokenHint: request.idTokenHint,
        logoutHint: request.logoutHint,
        clientId: request.clientId,
        postLogoutRedirectUri: request.postLogoutRedirectUri,
        state: request.state,
        sessionToken: request.sessionToken,
      });
    },

    async logout(request, context) {
      requireGateway(context, options);
      await server(context).logout(request.sessionToken);
      return {};
    },
  };
}
