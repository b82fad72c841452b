import type { ServiceImpl } from "@connectrpc/connect";
import { SessionService } from "../../../gen/gatehouse/v1/session_service_pb.js";
import type { AuthorizationServer } from "../oauth/authorization-server.js";
import { clientAddress, requireGateway, type CallerCheck } from "./caller.js";

/** The login page's RPCs; gateway only. */
export function createSessionService(options: CallerCheck & { server: () => AuthorizationServer }): ServiceImpl<typeof SessionService> {
  const { server } = options;
  return {
    async login(request, context) {
      requireGateway(context, options);
      const session = await server().login({
        username: request.username,
        password: request.password,
        clientAddress: request.clientAddress !== "" ? request.clientAddress : clientAddress(context, options),
      });
      return { ...session, authTime: BigInt(session.authTime), expiresIn: BigInt(session.expiresIn) };
    },

    async getSession(request, context) {
      requireGateway(context, options);
      const session = await server().getSession(request.sessionToken);
      if (session === undefined) return { active: false };
      return { active: true, subject: session.subject, authTime: BigInt(session.authTime), sid: session.sid };
    },

    async planLogout(request, context) {
      requireGateway(context, options);
      return server().planLogout({
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
      await server().logout(request.sessionToken);
      return {};
    },
  };
}
