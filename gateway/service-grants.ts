import type { CallOptions, Client } from "@connectrpc/connect";
import type { AuthorizationService, TokenSet } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { GRANT_NAME, VSCHAR, type ParameterSyntax } from "./form-body.js";

/** RFC 8693 §2.1: the token exchange grant type. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

/**
 * RFC 7521 §4.2 / RFC 7523 §2.2 client assertion parameters, accepted by the
 * token, introspection and revocation endpoints alike. An assertion is a JWT
 * (a projected Kubernetes token is one too, a few KiB with RSA).
 */
export const CLIENT_ASSERTION_PARAMETERS: Record<string, ParameterSyntax> = {
  client_assertion_type: { pattern: GRANT_NAME, maxLength: 256 },
  client_assertion: { pattern: "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$", maxLength: 8192 },
};

/** The token endpoint's parameters of the client credentials grant (RFC 6749 §4.4.2, RFC 8707 §2) and token exchange (RFC 8693 §2.1). */
export const SERVICE_GRANT_PARAMETERS: Record<string, ParameterSyntax> = {
  // RFC 8707 §2: may repeat (the code and refresh grants take several; the service grants one).
  resource: { pattern: VSCHAR, maxLength: 2048, maxRepeats: 16 },
  audience: { pattern: VSCHAR, maxLength: 2048 },
  subject_token: { pattern: VSCHAR, maxLength: 8192 },
  subject_token_type: { pattern: GRANT_NAME, maxLength: 256 },
  actor_token: { pattern: VSCHAR, maxLength: 8192 },
  actor_token_type: { pattern: GRANT_NAME, maxLength: 256 },
  requested_token_type: { pattern: GRANT_NAME, maxLength: 256 },
};

type Form = Partial<Record<string, string>>;

/** The client authentication fields of an RPC, from the form (RFC 6749 §2.3.1, RFC 7523 §2.2). */
export function clientFields(form: Form) {
  return {
    clientId: form.client_id ?? "",
    clientSecret: form.client_secret ?? "",
    clientAssertionType: form.client_assertion_type ?? "",
    clientAssertion: form.client_assertion ?? "",
  };
}

/**
 * The token request of a service grant as its RPC (ClientCredentials,
 * ExchangeToken); undefined for any other grant type. `resources`: the
 * request's `resource` parameters (RFC 8707 §2), in order.
 */
export async function requestServiceGrant(
  authz: Client<typeof AuthorizationService>,
  form: Form,
  resources: readonly string[],
  callOptions: CallOptions,
): Promise<{ token?: TokenSet | undefined } | undefined> {
  // These grants' RPCs take one resource: a second is refused here rather than silently dropped.
  if ((form.grant_type === "client_credentials" || form.grant_type === TOKEN_EXCHANGE_GRANT) && resources.length > 1) throw new OnlyOneResource();
  const resource = resources[0] ?? "";
  switch (form.grant_type) {
    case "client_credentials":
      return authz.clientCredentials({ scope: form.scope ?? "", resource, ...clientFields(form) }, callOptions);
    case TOKEN_EXCHANGE_GRANT:
      return authz.exchangeToken(
        {
          subjectToken: form.subject_token ?? "",
          subjectTokenType: form.subject_token_type ?? "",
          actorToken: form.actor_token ?? "",
          actorTokenType: form.actor_token_type ?? "",
          requestedTokenType: form.requested_token_type ?? "",
          resource,
          audience: form.audience ?? "",
          scope: form.scope ?? "",
          ...clientFields(form),
        },
        callOptions,
      );
    default:
      return undefined;
  }
}

/** RFC 8707 §2 invalid_target: the client credentials and token exchange grants take one `resource` at a time. */
export class OnlyOneResource extends Error {
  readonly error = "invalid_target";
  constructor() {
    super("this grant takes one resource at a time");
  }
}
