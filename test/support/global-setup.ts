import "vitest";
import type { TestProject } from "vitest/node";
import { startRedisServer, type RedisServer } from "./redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The Redis every test may use: REDIS_URL, or a redis-server started here. */
    redisUrl: string;
  }
}

let started: RedisServer | undefined;

/**
 * Tests need a Redis they can count on, and never skip for lack of one:
 * REDIS_URL if set, else a redis-server of their own on a free port.
 */
export async function setup(project: TestProject): Promise<void> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv !== undefined && fromEnv !== "") {
    project.provide("redisUrl", fromEnv);
    return;
  }
  started = await startRedisServer();
  project.provide("redisUrl", started.url);
}

export async function teardown(): Promise<void> {
  await started?.stop();
}
