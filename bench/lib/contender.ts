import { createHash, randomBytes } from "node:crypto";
import type { BenchSecrets } from "./stack-config.js";

/**
 * What every contender of bench:peers starts from, so that the servers differ
 * and nothing else: one confidential client `web` (client_secret_basic, the
 * same secret), one redirect URI, one PKCE S256 pair, one signing key, one Redis.
 */
export interface ContenderSetup {
  readonly redisUrl: string;
  /** `secrets.web` is the client's secret; `secrets.env.BENCH_SIGNING_KEYS` the ES256 key. */
  readonly secrets: BenchSecrets;
  readonly redirectUri: string;
  readonly codeVerifier: string;
  readonly codeChallenge: string;
  /** Authorization codes live this long, so that codes minted before a phase outlive it. */
  readonly codeLifetimeSeconds: number;
  /** Write CPU profiles of the contender's processes here. */
  readonly profileDir?: string;
}

/** A started contender: its HTTP endpoints, its processes, and how to mint codes for it. */
export interface RunningContender {
  /** RFC 6749 §3.2 token endpoint. */
  readonly tokenUrl: string;
  /** RFC 7662 §2 introspection endpoint. */
  readonly introspectUrl: string;
  /** Its own processes (name -> pid); their CPU is measured per request. */
  readonly processes: Readonly<Record<string, number | undefined>>;
  /** `count` fresh, redeemable authorization codes for `web`, bound to the setup's PKCE challenge and redirect URI. */
  mintCodes(count: number): Promise<string[]>;
  /** gatehouse split: the gateway's calls to the authz service so far, sent alone and batched, and the batches (its /metrics). */
  hopCalls?(): Promise<HopCalls>;
  stop(): Promise<void>;
}

/** The gateway's counters of its calls to the authz service (gatehouse_gateway_authz_calls_total, _batches_total). */
export interface HopCalls {
  readonly alone: number;
  readonly batched: number;
  readonly batches: number;
}

/**
 * One server in the comparison. bench:peers runs every contender of its list
 * through the same phases; ratios are each `gatehouse` contender's figure
 * over the `peer`'s of the same round. A new deployment mode of gatehouse
 * (all-in-one) is one more entry in that list.
 */
export interface Contender {
  readonly name: string;
  readonly side: "gatehouse" | "peer";
  start(setup: ContenderSetup): Promise<RunningContender>;
}

/** A PKCE S256 pair (RFC 7636 §4.1, §4.2). */
export function createPkcePair(): { codeVerifier: string; codeChallenge: string } {
  const codeVerifier = randomBytes(32).toString("base64url");
  return { codeVerifier, codeChallenge: createHash("sha256").update(codeVerifier).digest("base64url") };
}

/** Polls `url` until it answers 2xx; fails with the processes' output after `timeoutMs` (a loaded machine starts slowly). */
export async function waitForReady(url: string, output: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not become ready within ${timeoutMs / 1000} s; output:\n${output()}`);
}
