import type { Tracing } from "../../startup/tracing.js";
import type { KeyRing } from "./oauth/key-ring.js";
import type { StepTracer } from "./oauth/trace.js";

/** The core's tracing port (oauth/trace.ts) over OpenTelemetry: each step a span under the call's. */
export function createStepTracer(tracing: Tracing): StepTracer {
  return { step: (name, run) => tracing.inSpan(name, run) };
}

/** The key ring with a span around each signature (`oauth.sign`) and verification (`oauth.verify`). */
export function traceKeyRing(keys: KeyRing, tracing: Tracing): KeyRing {
  return {
    get activeKid() {
      return keys.activeKid;
    },
    get publicJwks() {
      return keys.publicJwks;
    },
    get activeAlg() {
      return keys.activeAlg;
    },
    get idTokenAlgorithms() {
      return keys.idTokenAlgorithms;
    },
    signIdToken: (claims, alg) => tracing.inSpan("oauth.sign_id_token", () => keys.signIdToken(claims, alg)),
    signLogoutToken: (claims, alg) => tracing.inSpan("oauth.sign_logout_token", () => keys.signLogoutToken(claims, alg)),
    verifyIdTokenHint: (token) => tracing.inSpan("oauth.verify_id_token_hint", () => keys.verifyIdTokenHint(token)),
    sign: (claims) => tracing.inSpan("oauth.sign", () => keys.sign(claims), { "gatehouse.kid": keys.activeKid }),
    verify: (token, now) => tracing.inSpan("oauth.verify", () => keys.verify(token, now)),
  };
}
