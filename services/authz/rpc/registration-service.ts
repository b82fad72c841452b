import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { RegistrationService } from "../../../gen/gatehouse/v1/registration_service_pb.js";
import { OAuthError } from "../oauth/errors.js";
import type { ClientInformation } from "../oauth/registration.js";
import { clientAddress, requireGateway, type CallerCheck } from "./caller.js";
import { serverFor, type TenantDirectory } from "./tenant.js";

/**
 * RFC 7591 / RFC 7592 behind the gateway's registration endpoint; gateway
 * only. Thin: JSON in, the core's ClientInformation out, in the call's tenant.
 */
export function createRegistrationService(options: CallerCheck & { tenants: TenantDirectory }): ServiceImpl<typeof RegistrationService> {
  const registration = (context: HandlerContext) => {
    requireGateway(context, options);
    return serverFor(context, options.tenants).server.registration;
  };
  return {
    async registerClient(request, context) {
      const client = await registration(context).register({
        metadata: parseJson(request.metadataJson),
        bearerToken: request.initialAccessToken,
        clientAddress: clientAddress(context, options),
      });
      return { client: toMessage(client) };
    },
    async getClientRegistration(request, context) {
      return { client: toMessage(await registration(context).read(request.clientId, request.registrationAccessToken)) };
    },
    async updateClientRegistration(request, context) {
      const service = registration(context);
      return { client: toMessage(await service.update(request.clientId, request.registrationAccessToken, parseJson(request.metadataJson))) };
    },
    async deleteClientRegistration(request, context) {
      await registration(context).remove(request.clientId, request.registrationAccessToken);
      return {};
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new OAuthError("invalid_client_metadata", "the request body is not JSON");
  }
}

function toMessage(client: ClientInformation) {
  return {
    clientId: client.clientId,
    metadataJson: JSON.stringify(client.metadata),
    clientIdIssuedAt: BigInt(client.clientIdIssuedAt),
    clientSecret: client.clientSecret ?? "",
    confidential: client.confidential,
    registrationAccessToken: client.registrationAccessToken,
  };
}
