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
  resource: { pattern: VSCHAR, maxLength: 2048 },
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
 * ExchangeToken); undefined for any other grant type.
 */
export async function requestServiceGrant(
  authz: Client<typeof AuthorizationService>,
  form: Form,
  callOptions: CallOptions,
): Promise<{ token?: TokenSet | undefined } | undefined> {
  switch (form.grant_type) {
    case "client_credentials":
      return authz.clientCredentials({ scope: form.scope ?? "", resource: form.resource ?? "", ...clientFields(form) }, callOptions);
    case TOKEN_EXCHANGE_GRANT:
      return authz.exchangeToken(
        {
          subjectToken: form.subject_token ?? "",
          subjectTokenType: form.subject_token_type ?? "",
          actorToken: form.actor_token ?? "",
          actorTokenType: form.actor_token_type ?? "",
          requestedTokenType: form.requested_token_type ?? "",
          resource: form.resource ?? "",
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
