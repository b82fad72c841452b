import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AuthorizationService,
  type TokenSetSchema,
  type WatchRevocationsResponseSchema,
} from "../../../gen/gatehouse/v1/authorization_service_pb.js";
import type { AuthorizationServer } from "../oauth/authorization-server.js";
import { OAuthError } from "../oauth/errors.js";
import type { Introspection } from "../oauth/introspect.js";
import type { TokenSet } from "../oauth/issue-tokens.js";
import { clientCall, isGateway, requireGateway, type CallerCheck } from "./caller.js";
import { EventQueue } from "./event-queue.js";

export interface AuthorizationServiceOptions extends CallerCheck {
  /** The current server; a function so a configuration reload swaps it for the next call. */
  server: () => AuthorizationServer;
  /** Seconds between WatchRevocations heartbeats, as configured now (a reload may change it for new streams). */
  heartbeatSeconds: () => number;
}

/** Thin translation between gatehouse.v1 messages and the protocol core (oauth/). */
export function createAuthorizationService(options: AuthorizationServiceOptions): ServiceImpl<typeof AuthorizationService> {
  const { server } = options;
  return {
    async authorize(request, context) {
      requireGateway(context, options);
      const pending = await server().authorize({
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
      };
    },

    async decide(request, context) {
      requireGateway(context, options);
      const redirectUrl = await server().decide({
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
      const token = await server().exchangeCode(clientCall(context, options, request), {
        code: request.code,
        redirectUri: request.redirectUri,
        codeVerifier: request.codeVerifier,
      });
      return { token: toTokenSet(token) };
    },

    async refresh(request, context) {
      const token = await server().refresh(clientCall(context, options, request), {
        refreshToken: request.refreshToken,
        scope: request.scope,
      });
      return { token: toTokenSet(token) };
    },

    async clientCredentials(request, context) {
      const token = await server().clientCredentials(clientCall(context, options, request), { scope: request.scope, resource: request.resource });
      return { token: toTokenSet(token) };
    },

    async exchangeToken(request, context) {
      const token = await server().exchangeToken(clientCall(context, options, request), {
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
      const result = await server().introspect(clientCall(context, options, request), request.token, request.tokenTypeHint);
      return toIntrospectResponse(result);
    },

    async revoke(request, context) {
      await server().revoke(clientCall(context, options, request), request.token, request.tokenTypeHint);
      return {};
    },

    async getJwks() {
      return { jwksJson: JSON.stringify(server().jwks()) };
    },

    async getMetadata() {
      return server().metadata();
    },

    // The access token is the credential (OpenID Connect Core §5.3.1): no caller check beyond it.
    async getUserInfo(request) {
      return { claimsJson: JSON.stringify(await server().userInfo(request.accessToken)) };
    },

    async *watchRevocations(_request, context) {
      // The gateway, or a resource server's guard authenticating as its own client.
      if (!isGateway(context, options)) await server().authorizeRevocationWatcher(clientCall(context, options, { clientId: "", clientSecret: "" }));
      const queue = new EventQueue<MessageInitShape<typeof WatchRevocationsResponseSchema>>();
      const subscription = await server().subscribeToRevocations(
        (revocation) =>
          queue.push({
            event: {
              case: "revocation",
              value: { target: "jti" in revocation ? { case: "jti", value: revocation.jti } : { case: "grantId", value: revocation.grantId } },
            },
          }),
        (reason) => queue.fail(new OAuthError("temporarily_unavailable", "the revocation feed was interrupted", { cause: reason })),
      );
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
  return { ...token, expiresIn: BigInt(token.expiresIn), issuedTokenType: token.issuedTokenType ?? "" };
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
  };
}
