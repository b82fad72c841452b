import { createHash } from "node:crypto";
import { StoreUnavailableError } from "../oauth/errors.js";
import type { RedisClient } from "./redis-client.js";

/**
 * Turns a failure to reach Redis into StoreUnavailableError (RPC Unavailable).
 * A Redis reply error other than a cluster or replication state is a bug in a
 * script or a command and is left as is (server_error).
 */
export async function guard<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (isReplyError(error) && !/^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|READONLY|MASTERDOWN|NOREPLICAS|BUSY)/.test(error.message)) {
      throw error;
    }
    throw new StoreUnavailableError(error);
  }
}

function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === "ReplyError";
}

export interface Script {
  readonly lua: string;
  readonly sha: string;
  /** Runs by SHA-1, sending the text on the first NOSCRIPT (per node, on a cluster). */
  run(client: RedisClient, scriptKeys: string[], args: Array<string | number>): Promise<unknown>;
}

export function defineScript(lua: string): Script {
  const sha = createHash("sha1").update(lua).digest("hex");
  return {
    lua,
    sha,
    async run(client, scriptKeys, args) {
      try {
        return await client.evalsha(sha, scriptKeys.length, ...scriptKeys, ...args);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
          return client.eval(lua, scriptKeys.length, ...scriptKeys, ...args);
        }
        throw error;
      }
    },
  };
}

