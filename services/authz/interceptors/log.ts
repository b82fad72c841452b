import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { tracingOff, type Tracing } from "../../../startup/tracing.js";
import { callLogIds } from "./call-log-ids.js";

/**
 * Logs each call's procedure, outcome and duration: failures at info, the rest
 * at debug, with the call's trace and span ids. Messages are never logged:
 * they carry codes, tokens and secrets.
 */
export function createLogInterceptor(options: { log: Logger; tracing?: Tracing }): Interceptor {
  const tracing = options.tracing ?? tracingOff;
  return (next) => async (request) => {
    const started = performance.now();
    try {
      const response = await next(request);
      if (options.log.isLevelEnabled("debug")) {
        options.log.debug({ procedure: request.method.name, ...callLogIds(tracing, request), ms: +(performance.now() - started).toFixed(2) }, "call ok");
      }
      return response;
    } catch (error) {
      const code = Code[ConnectError.from(error).code];
      options.log.info({ procedure: request.method.name, ...callLogIds(tracing, request), code, ms: +(performance.now() - started).toFixed(2) }, "call failed");
      throw error;
    }
  };
}
