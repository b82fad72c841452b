import { Code, ConnectError } from "@connectrpc/connect";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import { SECRETS, WEB_REDIRECT, basic, pkcePair, type TestAuthz } from "./authz.js";

export interface FlowFailure {
  /** ms since the epoch */
  at: number;
  step: "authorize" | "decide" | "exchange" | "refresh";
  code: string;
  oauthError: string | undefined;
}

export interface FlowLoadResult {
  /** Flows begun: each ends as one of `flows` or one of `failures`, so none is lost. */
  started: number;
  flows: number;
  failures: FlowFailure[];
  /** When each flow finished, ms since the epoch. */
  completions: number[];
  /** Codes that were exchanged successfully: presenting one again must fail. */
  redeemedCodes: Array<{ code: string; verifier: string }>;
  /** Refresh tokens that were rotated out successfully: presenting one again must fail. */
  rotatedOut: string[];
}

/**
 * Runs whole authorization code flows (Authorize, Decide, ExchangeCode, one
 * Refresh) back to back from `concurrency` callers, spread over the given
 * replicas, until stopped. Records what it needs to prove afterwards that
 * nothing was lost or accepted twice.
 */
export function startFlowLoad(replicas: readonly TestAuthz[], options: { concurrency: number }) {
  const result: FlowLoadResult = { started: 0, flows: 0, failures: [], completions: [], redeemedCodes: [], rotatedOut: [] };
  let running = true;
  let turn = 0;
  const web = basic("web", SECRETS.web);

  const flow = async () => {
    const t = replicas[turn++ % replicas.length]!;
    result.started++;
    let step: FlowFailure["step"] = "authorize";
    try {
      const pkce = pkcePair();
      const pending = await t.authz.authorize(
        { responseType: "code", clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge, codeChallengeMethod: "S256" },
        t.asGateway,
      );
      step = "decide";
      const { redirectUrl } = await t.authz.decide({ requestId: pending.requestId, subject: "load", authTime: 1n, approved: true }, t.asGateway);
      const code = new URL(redirectUrl).searchParams.get("code")!;
      step = "exchange";
      const { token } = await t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkce.verifier }, web);
      result.redeemedCodes.push({ code, verifier: pkce.verifier });
      step = "refresh";
      await t.authz.refresh({ refreshToken: token!.refreshToken }, web);
      result.rotatedOut.push(token!.refreshToken);
      result.flows++;
      result.completions.push(Date.now());
    } catch (error) {
      const connectError = ConnectError.from(error);
      result.failures.push({
        at: Date.now(),
        step,
        code: Code[connectError.code],
        oauthError: connectError.findDetails(OAuthErrorDetailSchema)[0]?.error,
      });
    }
  };

  const workers = Array.from({ length: options.concurrency }, async () => {
    while (running) await flow();
  });
  return {
    result,
    async stop(): Promise<FlowLoadResult> {
      running = false;
      await Promise.all(workers);
      return result;
    },
  };
}

/**
 * Presents every redeemed code and every rotated-out refresh token again.
 * Returns how many were accepted: anything but 0 is a double spend.
 */
export async function replayEverything(t: TestAuthz, result: FlowLoadResult): Promise<{ accepted: number; presented: number }> {
  const web = basic("web", SECRETS.web);
  let accepted = 0;
  const attempts = [
    ...result.redeemedCodes.map(({ code, verifier }) => () => t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, web)),
    ...result.rotatedOut.map((refreshToken) => () => t.authz.refresh({ refreshToken }, web)),
  ];
  for (let i = 0; i < attempts.length; i += 20) {
    const settled = await Promise.allSettled(attempts.slice(i, i + 20).map((attempt) => attempt()));
    accepted += settled.filter((s) => s.status === "fulfilled").length;
  }
  return { accepted, presented: attempts.length };
}
