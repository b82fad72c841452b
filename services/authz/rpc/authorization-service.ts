import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Revocation } from "../oauth/store.js";
import {
  AuthorizationService,
  type TokenSetSchema,
  type WatchRevocationsResponseSchema,
} from "../../../gen/gatehouse/v1/authorization_service_pb.js";
import { OAuthError } from "../oauth/errors.js";
import type { Introspection } from "../oauth/introspect.js";
import type { TokenSet } from "../oauth/issue-tokens.js";
import { clientCall, isGateway, requireGateway, type CallerCheck } from "./caller.js";
import { EventQueue } from "./event-queue.js";
import { serverFor, serverForToken, type TenantDirectory } from "./tenant.js";
import { DEFAULT_TENANT } from "../../../startup/tenant-name.js";

export interface AuthorizationServiceOptions extends CallerCheck {
  /** The tenants' servers as configured now: a reload swaps them for the next call. Each call names its tenant (rpc/tenant.ts). */
  tenants: TenantDirectory;
  /** Seconds between WatchRevocations heartbeats, as configured now (a reload may change it for new streams). */
  heartbeatSeconds: () => number;
}

/** Thin translation between gatehouse.v1 messages and the protocol core (oauth/). */
export function createAuthorizationService(options: AuthorizationServiceOptions): ServiceImpl<typeof AuthorizationService> {
  const { tenants } = options;
  const server = (context: HandlerContext) => serverFor(context, tenants).server;
  return {
    async authorize(request, context) {
      requireGateway(context, options);
      const pending = await server(context).authorize({
        responseType: request.responseType,
        clientId: request.clientId,
        redirectUri: request.redirectUri,
        scope: request.scope,
        state: request.state,
        codeChallenge: request.codeChallenge,
        codeChallengeMethod: request.codeChallengeMethod,
        subject: request.subject,
        authTime: Number(request.authTime),
        nonce: request.nonce,
        prompt: request.prompt,
        maxAge: request.maxAge,
        loginHint: request.loginHint,
        idTokenHint: request.idTokenHint,
        display: request.display,
        uiLocales: request.uiLocales,
        claimsLocales: request.claimsLocales,
        request: request.request,
        requestUri: request.requestUri,
        resources: request.resource,
      });
      return {
        requestId: pending.requestId,
        clientId: pending.client.id,
        clientName: pending.client.name,
        scopes: pending.scopes,
        redirectUri: pending.redirectUri,
        firstParty: pending.client.firstParty,
        consentRemembered: pending.consentRemembered,
        expiresIn: BigInt(pending.expiresIn),
        loginRequired: pending.loginRequired,
        consentRequired: pending.consentRequired,
        userName: pending.userName,
        clientSource: pending.client.selfRegistered ?? "",
        logoUri: pending.client.logoUri ?? "",
        clientHost: pending.client.selfRegistered === "metadata-document" ? new URL(pending.client.id).host : "",
        resources: pending.resources,
        withheldScopes: pending.withheldScopes.map((scope) => ({ name: scope.name, description: scope.description })),
      };
    },

    async decide(request, context) {
      requireGateway(context, options);
      const redirectUrl = await server(context).decide({
        requestId: request.requestId,
        subject: request.subject,
        authTime: Number(request.authTime),
        approved: request.approved,
        rememberConsent: request.rememberConsent,
        sid: request.sid,
      });
      return { redirectUrl };
    },

    async exchangeCode(request, context) {
      const token = await server(context).exchangeCode(clientCall(context, options, request), {
        code: request.code,
        redirectUri: request.redirectUri,
        codeVerifier: request.codeVerifier,
        resources: request.resource,
      });
      return { token: toTokenSet(token) };
    },

    async refresh(request, context) {
      const token = await server(context).refresh(clientCall(context, options, request), {
        refreshToken: request.refreshToken,
        scope: request.scope,
        resources: request.resource,
      });
      return { token: toTokenSet(token) };
    },

    async clientCredentials(request, context) {
      const token = await server(context).clientCredentials(clientCall(context, options, request), { scope: request.scope, resource: request.resource });
      return { token: toTokenSet(token) };
    },

    async exchangeToken(request, context) {
      const token = await server(context).exchangeToken(clientCall(context, options, request), {
        subjectToken: request.subjectToken,
        subjectTokenType: request.subjectTokenType,
        actorToken: request.actorToken,
        actorTokenType: request.actorTokenType,
        requestedTokenType: request.requestedTokenType,
        resource: request.resource,
        audience: request.audience,
        scope: request.scope,
      });
      return { token: toTokenSet(token) };
    },

    async introspect(request, context) {
      // Without a tenant named, the token's `iss` says which (rpc/tenant.ts).
      const { tenant, server: own } = serverForToken(context, tenants, request.token);
      const call = clientCall(context, options, request);
      // The gateway in a named tenant, with its service credential and no client credentials (authorization-server.ts).
      const asGateway = tenant !== DEFAULT_TENANT && call.credentials.authorization === undefined && request.clientId === "" && request.clientSecret === "" && isGateway(context, options);
      const result = asGateway ? await own.introspectForGateway(request.token, request.tokenTypeHint) : await own.introspect(call, request.token, request.tokenTypeHint);
      return toIntrospectResponse(result);
    },

    async revoke(request, context) {
      await server(context).revoke(clientCall(context, options, request), request.token, request.tokenTypeHint);
      return {};
    },

    async getJwks(_request, context) {
      return { jwksJson: JSON.stringify(server(context).jwks()) };
    },

    async getMetadata(_request, context) {
      return server(context).metadata();
    },

    // The access token is the credential (OpenID Connect Core §5.3.1): no caller check beyond it.
    // Its tenant is the one named, or without a name the one whose issuer the token names (as Introspect).
    async getUserInfo(request, context) {
      const { server: own } = serverForToken(context, tenants, request.accessToken);
      return { claimsJson: JSON.stringify(await own.userInfo(request.accessToken)) };
    },

    async *watchRevocations(_request, context) {
      const queue = new EventQueue<MessageInitShape<typeof WatchRevocationsResponseSchema>>();
      const push = (revocation: Revocation, tenant: string | undefined) =>
        queue.push({
          event: {
            case: "revocation",
            value: {
              target:
                "jti" in revocation
                  ? { case: "jti", value: revocation.jti }
                  : "grantId" in revocation
                    ? { case: "grantId", value: revocation.grantId }
                    : { case: "subject", value: revocation.subject },
              tenant: tenant === undefined || tenant === DEFAULT_TENANT ? "" : tenant,
            },
          },
        });
      const broken = (reason: Error) => queue.fail(new OAuthError("temporarily_unavailable", "the revocation feed was interrupted", { cause: reason }));
      let subscription;
      if (isGateway(context, options)) {
        // The gateway guards routes of every tenant: one stream carries every tenant's revocations.
        subscription = await tenants.subscribeAll(push, broken);
      } else {
        // A resource server's guard authenticating as its own client, in its tenant: that tenant's revocations only.
        const { tenant, server: own } = serverFor(context, tenants);
        await own.authorizeRevocationWatcher(clientCall(context, options, { clientId: "", clientSecret: "" }));
        subscription = await own.subscribeToRevocations((revocation) => push(revocation, tenant), broken);
      }
      const seconds = options.heartbeatSeconds();
      const heartbeat = setInterval(() => queue.push({ event: { case: "heartbeat", value: {} } }), seconds * 1000);
      try {
        yield { event: { case: "subscribed", value: { heartbeatInterval: BigInt(seconds) } } };
        yield* queue.drain(context.signal);
      } finally {
        clearInterval(heartbeat);
        subscription.unsubscribe();
      }
    },
  };
}

function toTokenSet(token: TokenSet): MessageInitShape<typeof TokenSetSchema> {
  return Object.assign({}, token, { expiresIn: BigInt(token.expiresIn), issuedTokenType: token.issuedTokenType ?? "" });
}

function toIntrospectResponse(result: Introspection) {
  if (!result.active) return { active: false };
  return {
    active: true,
    scope: result.scope,
    clientId: result.clientId,
    username: result.sub,
    tokenType: result.tokenType,
    exp: BigInt(result.exp),
    iat: BigInt(result.iat),
    sub: result.sub,
    aud: result.aud,
    iss: result.iss,
    jti: result.jti,
    authTime: BigInt(result.authTime),
    grantId: result.grantId,
    act: result.act,
    groups: [...result.groups],
  };
}
