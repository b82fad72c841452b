import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { waitFor } from "./wait-for.js";

/** A free TCP port on loopback, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  readonly port: number;
  /** The running server's process id. */
  readonly pid: number | undefined;
  readonly url: string;
  /** Stops the server (SIGKILL: as abrupt as a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/**
 * A real redis-server on a loopback port, for tests that need a Redis of
 * their own (outages, topologies). It keeps nothing on disk.
 */
export async function startRedisServer(options: { port?: number; args?: string[]; configFile?: string } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-redis-"));
  let child: ChildProcess | undefined;

  const start = async () => {
    const config = options.configFile === undefined ? [] : [options.configFile];
    // Nothing on disk, and nowhere near the checkout: a replica's full sync is diskless.
    const base = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"];
    child = spawn("redis-server", [...config, ...base, ...(options.args ?? [])], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.once("error", () => {});
    await waitForPing(port);
  };

  await start();
  return {
    port,
    get pid() {
      return child?.pid;
    },
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const running = child;
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGKILL");
      await exited;
    },
    start,
  };
}

/** The server answers PING: a fraction of a second on a quiet machine. */
async function waitForPing(port: number): Promise<void> {
  await waitFor(
    async () => {
      const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on("error", () => {});
      try {
        await client.connect();
        return (await client.ping()) === "PONG";
      } finally {
        client.disconnect();
      }
    },
    { budgetMs: 5_000, what: `redis-server on port ${port} to answer PING`, intervalMs: 50 },
  );
}
