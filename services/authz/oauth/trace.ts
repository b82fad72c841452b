/**
 * The core's one tracing port: names a step of the protocol (client
 * authentication, code redemption, ...) so that an operator sees where a
 * request's time went. Implemented over OpenTelemetry in the composition
 * root (services/authz/traced-core.ts); absent, steps run as they are, with
 * no wrapper at all (OAuthContext.trace is optional, and
 * createAuthorizationServer wraps nothing without it).
 */
export interface StepTracer {
  /** Runs `run` as a step named `name`; its store calls and signatures nest under it. */
  step<T>(name: string, run: () => Promise<T>): Promise<T>;
}

/**
 * `fn` as a step when there is a tracer, else `fn` itself: the untraced
 * server pays nothing, not even a closure per call.
 */
export function traced<A extends unknown[], T>(tracer: StepTracer | undefined, name: string, fn: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  if (tracer === undefined) return fn;
  return (...args) => tracer.step(name, () => fn(...args));
}
