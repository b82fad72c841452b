import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { CLIENT_ADDRESS_HEADER, ENDPOINT_URL_HEADER, SERVICE_CREDENTIAL_HEADER } from "../../../contract/metadata.js";
import type { ClientCall } from "../oauth/authorization-server.js";
import { OAuthError } from "../oauth/errors.js";
import { constantTimeEqual } from "../oauth/secrets.js";

/** The TCP peer of a call, set by the server for every request (server.ts). */
export const kPeerAddress = createContextKey<string>("", { description: "peer address" });


export interface CallerCheck {
  /** The gateway's credential in force (a reload may change it); undefined: nobody may call the gateway-only RPCs. */
  serviceCredential: () => string | undefined;
}

/** True when the call carries the gateway's service credential. */
export function isGateway(context: HandlerContext, check: CallerCheck): boolean {
  const presented = context.requestHeader.get(SERVICE_CREDENTIAL_HEADER);
  const expected = check.serviceCredential();
  return presented !== null && expected !== undefined && constantTimeEqual(presented, expected);
}

/** Gateway-only RPCs assert who the resource owner is; anyone else is refused (../shared/DESIGN.md). */
export function requireGateway(context: HandlerContext, check: CallerCheck): void {
  if (!isGateway(context, check)) throw new OAuthError("unauthenticated_caller", "this call requires the gateway's service credential");
}

/** The client's credentials from metadata and fields, and where the call came from. */
export function clientCall(
  context: HandlerContext,
  check: CallerCheck,
  fields: { clientId: string; clientSecret: string; clientAssertionType?: string; clientAssertion?: string },
): ClientCall {
  const call: ClientCall = {
    credentials: {
      authorization: context.requestHeader.get("authorization") ?? undefined,
      clientId: fields.clientId,
      clientSecret: fields.clientSecret,
      clientAssertionType: fields.clientAssertionType ?? "",
      clientAssertion: fields.clientAssertion ?? "",
    },
    clientAddress: clientAddress(context, check),
  };
  if (call.credentials.clientAssertion !== "") {
    // Only an assertion needs the endpoint (its aud); the header is believed from the gateway alone.
    const endpoint = context.requestHeader.get(ENDPOINT_URL_HEADER);
    if (endpoint !== null && endpoint !== "" && isGateway(context, check)) call.endpointUrl = endpoint;
  }
  return call;
}

/** The browser's address as the gateway reports it, else the RPC peer. */
export function clientAddress(context: HandlerContext, check: CallerCheck): string {
  const reported = context.requestHeader.get(CLIENT_ADDRESS_HEADER);
  if (reported !== null && reported !== "" && isGateway(context, check)) return reported;
  return context.values.get(kPeerAddress);
}
