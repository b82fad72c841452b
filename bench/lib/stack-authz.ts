import { createHash, randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { BENCH_REDIRECT_URI, BENCH_SUBJECT, type BenchSecrets } from "./stack-config.js";

/**
 * The benchmark stack's authz service as its callers see it
 * (bench/lib/stack-config.ts): waiting until it answers, and getting a token
 * the way a user would, with the code grant and PKCE.
 */
function authzClient(authzUrl: string) {
  return createClient(AuthorizationService, createConnectTransport({ baseUrl: authzUrl, httpVersion: "1.1" }));
}

/** Resolves once the authz service answers GetMetadata (by condition: polls every 100 ms, gives up after 30 s). */
export async function waitForAuthz(authzUrl: string): Promise<void> {
  const authz = authzClient(authzUrl);
  let last: unknown;
  for (let i = 0; i < 300; i++) {
    try {
      await authz.getMetadata({});
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`the authz service at ${authzUrl} did not start: ${String(last)}`);
}

/** An access token for the client `web` with scope `read`: Authorize, Decide, ExchangeCode (RFC 6749 §4.1 with RFC 7636 S256). */
export async function issueBenchToken(authzUrl: string, secrets: BenchSecrets): Promise<string> {
  const authz = authzClient(authzUrl);
  const asGateway = { headers: { "gatehouse-service-credential": secrets.service } };
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const { requestId } = await authz.authorize(
    { responseType: "code", clientId: "web", redirectUri: BENCH_REDIRECT_URI, scope: "read", codeChallenge: challenge, codeChallengeMethod: "S256" },
    asGateway,
  );
  const { redirectUrl } = await authz.decide({ requestId, subject: BENCH_SUBJECT, authTime: 1n, approved: true }, asGateway);
  const code = new URL(redirectUrl).searchParams.get("code")!;
  const { token } = await authz.exchangeCode(
    { code, redirectUri: BENCH_REDIRECT_URI, codeVerifier: verifier },
    { headers: { authorization: `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}` } },
  );
  return token!.accessToken;
}
