import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";

/**
 * Logs each call's procedure, outcome and duration: failures at info, the rest
 * at debug. Messages are never logged: they carry codes, tokens and secrets.
 */
export function createLogInterceptor(options: { log: Logger }): Interceptor {
  return (next) => async (request) => {
    const started = performance.now();
    try {
      const response = await next(request);
      if (options.log.isLevelEnabled("debug")) {
        options.log.debug({ procedure: request.method.name, ms: +(performance.now() - started).toFixed(2) }, "call ok");
      }
      return response;
    } catch (error) {
      const code = Code[ConnectError.from(error).code];
      options.log.info({ procedure: request.method.name, code, ms: +(performance.now() - started).toFixed(2) }, "call failed");
      throw error;
    }
  };
}
