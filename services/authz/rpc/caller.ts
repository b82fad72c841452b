import { hash, timingSafeEqual } from "node:crypto";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { CLIENT_ADDRESS_HEADER, ENDPOINT_URL_HEADER, SERVICE_CREDENTIAL_HEADER } from "../../../contract/metadata.js";
import type { ClientCall } from "../oauth/authorization-server.js";
import { OAuthError } from "../oauth/errors.js";

/** The TCP peer of a call, set by the server for every request (server.ts). */
export const kPeerAddress = createContextKey<string>("", { description: "peer address" });


export interface CallerCheck {
  /** The gateway's credentials in force (a reload may change them); empty: nobody may call the gateway-only RPCs. */
  serviceCredentials: () => readonly NamedSecret[];
}

/** A credential and the name logs show for it. */
export interface NamedSecret {
  readonly name: string;
  readonly secret: string;
}

/**
 * The credential whose secret `presented` is, if any. Every credential is
 * compared, each in constant time over SHA-256 digests (equal lengths, so
 * not even a secret's length leaks), and the loop does not stop at a match:
 * the answer takes as long whichever credential matched, or none.
 */
export function matchCredential(presented: string | null, credentials: readonly NamedSecret[]): NamedSecret | undefined {
  if (presented === null || presented === "") return undefined;
  // One-shot (crypto.hash): this runs on every call that names a client, and createHash cost twice as much.
  const digest = hash("sha256", presented, "buffer");
  let found: NamedSecret | undefined;
  for (const credential of credentials) {
    if (timingSafeEqual(digest, digestOf(credential)) && found === undefined) found = credential;
  }
  return found;
}

/**
 * A configured credential's digest, made once: the credentials are the
 * configuration's objects, alive until a reload replaces them, and every
 * call compares against them (in the all-in-one process, several times a
 * request).
 */
const digests = new WeakMap<NamedSecret, Buffer>();
function digestOf(credential: NamedSecret): Buffer {
  let digest = digests.get(credential);
  if (digest === undefined) digests.set(credential, (digest = hash("sha256", credential.secret, "buffer")));
  return digest;
}

/**
 * Whether a transport has checked the call's service credential already, and
 * the answer: a batch's credential is every one of its calls' (transport/call-batch.ts),
 * so it is checked once for all of them. Unset, isGateway checks the call's own header.
 */
export const kServiceCredentialChecked = createContextKey<boolean | undefined>(undefined, { description: "service credential checked" });

/** True when the call carries one of the gateway's service credentials. */
export function isGateway(context: HandlerContext, check: CallerCheck): boolean {
  return context.values.get(kServiceCredentialChecked) ?? isServiceCredential(context.requestHeader.get(SERVICE_CREDENTIAL_HEADER), check);
}

/** True when `presented` is one of the gateway's service credentials in force. */
export function isServiceCredential(presented: string | null, check: CallerCheck): boolean {
  return matchCredential(presented, check.serviceCredentials()) !== undefined;
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
