import type { Cluster, Redis } from "ioredis";
import type { Clock } from "../oauth/clock.js";
import { StoreUnavailableError } from "../oauth/errors.js";
import { createKeySchema } from "./keys.js";
import { defineScript, guard, type Script } from "./redis-script.js";
import { createRedisAuditLog, createRedisRegistry } from "./redis-registry.js";
import { waitUntilReady, type RedisClient } from "./redis-client.js";
import type { TenantStores } from "./tenant-stores.js";
import type {
  CodeGrant,
  CodeRedemption,
  ParkedRequest,
  RefreshFamily,
  Revocation,
  RevocationSubscription,
  Rotation,
  Session,
  SessionExpiry,
  Store,
  StoredSession,
  UserState,
} from "../oauth/store.js";
import { checkNextGeneration, type SigningKeySet } from "../oauth/signing-key-store.js";

export interface RedisStoreOptions {
  client: RedisClient;
  clock: Clock;
  /** Namespaces the keys of one deployment or test run. */
  keyPrefix: string;
  /**
   * Wait for a replica to acknowledge single-use writes (code redemption,
   * rotation, revocation) before answering; undefined: do not wait (one Redis
   * without replicas). See `durable` below.
   */
  replicaAckTimeoutMs?: number | undefined;
  /** The tenant whose key space this store is (store/keys.ts); undefined: the default tenant. */
  tenant?: string | undefined;
}

/**
 * The production Store, on Redis through ioredis. Each atomic operation of the
 * contract (store.ts) is one Lua script, and every key a script touches shares
 * one hash tag, so the same code runs on a single Redis, Sentinel and Cluster.
 * Codes and tokens appear only as hashes; every key has a TTL.
 */
export function createRedisStore(options: RedisStoreOptions): Store {
  return createRedisStores(options).forTenant(options.tenant);
}

/**
 * Every tenant's store over one Redis client and one subscriber connection
 * (tenant-stores.ts). Closing any of them closes the client, and with it all.
 */
export function createRedisStores(options: Omit<RedisStoreOptions, "tenant">): TenantStores {
  const subscriptions = createSubscriptions(options.client, createKeySchema(options.keyPrefix).revocationChannel);
  const close = async () => {
    subscriptions.close();
    options.client.disconnect();
  };
  const stores = new Map<string | undefined, Store>();
  return {
    forTenant(tenant) {
      let store = stores.get(tenant);
      if (store === undefined) {
        store = createTenantRedisStore(options, tenant, subscriptions, close);
        stores.set(tenant, store);
      }
      return store;
    },
    subscribeAll: (onRevocation, onBroken) => subscriptions.add(onRevocation, onBroken),
    ping: () =>
      guard(async () => {
        await options.client.ping();
      }),
    close,
  };
}

function createTenantRedisStore(
  options: Omit<RedisStoreOptions, "tenant">,
  tenant: string | undefined,
  subscriptions: ReturnType<typeof createSubscriptions>,
  close: () => Promise<void>,
): Store {
  const { client, clock } = options;
  const keys = createKeySchema(options.keyPrefix, tenant);

  /**
   * Runs a write of OAuth state so that a failover cannot undo it. Redis
   * replicates asynchronously: a master that dies right after consuming a code
   * can be replaced by a replica that never saw the tombstone, and the code
   * would be accepted twice; one that dies right after saving a code loses
   * the grant. So the write goes in one pipeline with a count of the master's
   * connected replicas (keyless commands follow the keyed one to its node, on
   * a cluster too). With no replica, no failover can lose the write (there is
   * nothing to fail over to) and it is done. With replicas, WAIT on the same
   * connection (routed by the same key) must see one acknowledge it within
   * `replicaAckTimeoutMs`, or the call fails (Unavailable): nothing is
   * answered that a failover might forget. Attempt counters and remembered
   * consent are not worth the wait and are written plainly.
   */
  const durable = async (script: Script, scriptKeys: string[], args: Array<string | number>): Promise<unknown> => {
    if (options.replicaAckTimeoutMs === undefined) return script.run(client, scriptKeys, args);
    const write = async (byText: boolean) => {
      const pipeline = client.pipeline();
      if (byText) pipeline.eval(script.lua, scriptKeys.length, ...scriptKeys, ...args);
      else pipeline.evalsha(script.sha, scriptKeys.length, ...scriptKeys, ...args);
      return (await pipeline.eval(CONNECTED_REPLICAS, 0).exec()) ?? [];
    };
    let results = await write(false);
    if (results[0]?.[0] instanceof Error && results[0][0].message.startsWith("NOSCRIPT")) results = await write(true);
    const [[writeError, written] = [], [countError, replicas] = []] = results;
    if (writeError) throw writeError;
    if (countError) throw countError;
    if (Number(replicas) === 0) return written;
    const [, [waitError, acks] = []] = (await client.pipeline().exists(scriptKeys[0]!).wait(1, options.replicaAckTimeoutMs).exec()) ?? [];
    if (waitError) throw waitError;
    if (Number(acks) < 1) throw new Error(`the write was not acknowledged by a replica within ${options.replicaAckTimeoutMs} ms`);
    return written;
  };

  return {
    requests: {
      park: (requestHash, request, ttlSeconds) =>
        guard(async () => {
          await durable(setWithTtl, [keys.request(requestHash)], [JSON.stringify(request), ttlSeconds * 1000]);
        }),
      take: (requestHash) =>
        guard(async () => {
          const value = (await durable(takeRequest, [keys.request(requestHash)], [])) as string | null;
          return value === null ? undefined : (JSON.parse(value) as ParkedRequest);
        }),
    },

    codes: {
      save: (codeHash, grant, ttlSeconds) =>
        guard(async () => {
          await durable(setWithTtl, [keys.code(codeHash)], [`${grant.grantId}|${JSON.stringify(grant)}`, ttlSeconds * 1000]);
        }),
      redeem: (codeHash, tombstoneTtlSeconds) =>
        guard(async (): Promise<CodeRedemption> => {
          const value = (await durable(redeemCode, [keys.code(codeHash)], [tombstoneTtlSeconds * 1000])) as string | null;
          if (value === null) return { kind: "unknown" };
          if (value.startsWith("!")) return { kind: "replayed", grantId: value.slice(1) };
          return { kind: "redeemed", grant: JSON.parse(value.slice(value.indexOf("|") + 1)) as CodeGrant };
        }),
    },

    grants: {
      create: (family) =>
        guard(async () => {
          // Indexed first: a family that exists is always found by its subject (the index is another slot's key).
          await addToIndex.run(client, [keys.subjectGrants(family.subject)], [family.grantId, family.familyExpiresAt - clock()]);
          const created = await durable(
            createFamily,
            [keys.family(family.grantId), keys.grantRevoked(family.grantId)],
            [
              family.clientId,
              family.subject,
              JSON.stringify(family.scopes),
              family.authTime,
              family.tokenHash,
              family.tokenExpiresAt,
              family.familyExpiresAt,
              family.tokenExpiresAt - clock(),
              family.sid ?? "",
              family.resources === undefined || family.resources.length === 0 ? "" : JSON.stringify(family.resources),
            ],
          );
          return created === 1;
        }),
      get: (grantId) =>
        guard(async () => {
          const fields = (await getFamily.run(client, [keys.family(grantId), keys.grantRevoked(grantId)], [])) as string[] | null;
          if (fields === null || fields.length === 0) return undefined;
          return parseFamily(grantId, fields);
        }),
      rotate: (input) =>
        guard(async (): Promise<Rotation> => {
          const [kind, sealedTokens] = (await durable(
            rotateFamily,
            [
              keys.family(input.grantId),
              keys.familyUsedToken(input.grantId, input.presentedHash),
              keys.grantRevoked(input.grantId),
            ],
            [
              input.presentedHash,
              input.nextHash,
              input.nextTokenExpiresAt,
              input.sealedTokens,
              clock(),
              input.graceMs,
              input.revokedTtlMs,
            ],
          )) as [Rotation["kind"], string | undefined];
          return kind === "grace" ? { kind, sealedTokens: sealedTokens ?? "" } : { kind };
        }),
      listOfSubject: (subject) =>
        guard(async () => {
          const key = keys.subjectGrants(subject);
          const families: RefreshFamily[] = [];
          const ended: string[] = [];
          // One grant at a time: each family's keys are a slot of their own on a cluster.
          for (const grantId of await client.smembers(key)) {
            const fields = (await getFamily.run(client, [keys.family(grantId), keys.grantRevoked(grantId)], [])) as string[] | null;
            if (fields === null || fields.length === 0) ended.push(grantId);
            else families.push(parseFamily(grantId, fields));
          }
          if (ended.length > 0) await client.srem(key, ...ended);
          return families;
        }),
      wasRotatedOut: (grantId, tokenHash) => guard(async () => (await client.exists(keys.familyUsedToken(grantId, tokenHash))) > 0),
      revoke: (grantId, revokedTtlMs) =>
        guard(async () => {
          await durable(revokeGrant, [keys.family(grantId), keys.grantRevoked(grantId)], [revokedTtlMs]);
        }),
      revokeAccessToken: (grantId, jti, ttlMs) =>
        guard(async () => {
          await durable(revokeAccessToken, [keys.accessTokenRevoked(grantId, jti)], [Math.max(1, ttlMs)]);
        }),
      // One EXISTS over keys of one hash tag: a single command, on a cluster too.
      isRevoked: (grantId, jti) =>
        guard(async () =>
          jti === undefined
            ? (await client.exists(keys.grantRevoked(grantId))) > 0
            : (await client.exists(keys.grantRevoked(grantId), keys.accessTokenRevoked(grantId, jti))) > 0,
        ),
    },

    registry: createRedisRegistry(client, keys),
    audit: createRedisAuditLog(client, keys),

    revocationFeed: {
      announce: (revocation) =>
        guard(async () => {
          // The default tenant's announcements are as before tenants; another's name it.
          await client.publish(keys.revocationChannel, JSON.stringify(tenant === undefined ? revocation : Object.assign({}, revocation, { tenant })));
        }),
      subscribe: (onRevocation, onBroken) =>
        subscriptions.add((revocation, from) => {
          if (from === tenant) onRevocation(revocation);
        }, onBroken),
    },

    sessions: {
      create: (sessionHash, session, ttlSeconds) =>
        guard(async () => {
          // Indexed first: a session that exists is always found by its subject (the index is another slot's key).
          await addToIndex.run(client, [keys.subjectSessions(session.subject)], [sessionHash, ttlSeconds * 1000]);
          await durable(setWithTtl, [keys.session(sessionHash)], [JSON.stringify(session), ttlSeconds * 1000]);
        }),
      listOfSubject: (subject) =>
        guard(async () => {
          const key = keys.subjectSessions(subject);
          const hashes = await client.smembers(key);
          const sessions: StoredSession[] = [];
          const ended: string[] = [];
          for (const sessionHash of hashes) {
            const value = await client.get(keys.session(sessionHash));
            if (value === null) ended.push(sessionHash);
            else sessions.push({ sessionHash, session: JSON.parse(value) as Session });
          }
          if (ended.length > 0) await client.srem(key, ...ended);
          return sessions;
        }),
      deleteAllOfSubject: (subject) =>
        guard(async () => {
          // The index is taken in one step: of two concurrent calls, each session goes to one.
          const hashes = (await durable(takeSet, [keys.subjectSessions(subject)], [])) as string[];
          const ended: string[] = [];
          for (const sessionHash of hashes) {
            if (Number(await durable(deleteKey, [keys.session(sessionHash)], [])) > 0) ended.push(sessionHash);
          }
          return ended;
        }),
      get: (sessionHash) =>
        guard(async () => {
          const value = await client.get(keys.session(sessionHash));
          return value === null ? undefined : (JSON.parse(value) as Session);
        }),
      delete: (sessionHash) =>
        guard(async () => {
          await durable(deleteKey, [keys.session(sessionHash)], []);
        }),
      addParticipant: (sid, participant, ttlSeconds) =>
        guard(async () => {
          const key = keys.sessionParticipants(sid);
          await client.multi().sadd(key, JSON.stringify([participant.clientId, participant.grantId])).pexpire(key, ttlSeconds * 1000).exec();
        }),
      scheduleExpiry: (expiry) =>
        guard(async () => {
          // The set lives an hour past its latest expiry: every key has a TTL, and a sweeper down that long loses only announcements.
          await scheduleDue.run(client, [keys.sessionExpiries], [expiry.expiresAt, JSON.stringify([expiry.sid, expiry.subject]), expiry.expiresAt - clock() + 3_600_000]);
        }),
      takeExpired: (now, limit) =>
        guard(async () => {
          const taken = (await takeDue.run(client, [keys.sessionExpiries], [now, limit])) as string[];
          const expired: SessionExpiry[] = [];
          for (let i = 0; i + 1 < taken.length; i += 2) {
            const [sid, subject] = JSON.parse(taken[i]!) as [string, string];
            expired.push({ sid, subject, expiresAt: Number(taken[i + 1]) });
          }
          return expired;
        }),
      takeParticipants: (sid) =>
        guard(async () => {
          const members = (await takeSet.run(client, [keys.sessionParticipants(sid)], [])) as string[];
          return members.map((member) => {
            const [clientId, grantId] = JSON.parse(member) as [string, string];
            return { clientId, grantId };
          });
        }),
    },

    consents: {
      remember: (subject, clientId, scopes, ttlSeconds) =>
        guard(async () => {
          if (scopes.length === 0) return;
          const key = keys.consent(subject, clientId);
          const index = keys.consentsOfSubject(subject);
          // Two keys of two slots (on a cluster): two commands. The index lives as long as the longest-lived consent.
          await Promise.all([client.multi().sadd(key, ...scopes).pexpire(key, ttlSeconds * 1000).exec(), indexMember.run(client, [index], [clientId, ttlSeconds * 1000])]);
        }),
      get: (subject, clientId) => guard(() => client.smembers(keys.consent(subject, clientId))),
      listOfSubject: (subject) =>
        guard(async () => {
          const index = keys.consentsOfSubject(subject);
          const clientIds = await client.smembers(index);
          const scopes = await Promise.all(clientIds.map((clientId) => client.smembers(keys.consent(subject, clientId))));
          const gone = clientIds.filter((_, i) => scopes[i]!.length === 0);
          if (gone.length > 0) await client.srem(index, ...gone);
          return clientIds.flatMap((clientId, i) => (scopes[i]!.length === 0 ? [] : [{ clientId, scopes: scopes[i]! }]));
        }),
      forget: (subject, clientId) =>
        guard(async () => {
          await client.del(keys.consent(subject, clientId));
          await client.srem(keys.consentsOfSubject(subject), clientId);
        }),
    },

    attempts: {
      hit: (key, windowMs) =>
        guard(async () => {
          const [count, resetInMs] = (await hitAttempts.run(client, [keys.attempts(key)], [windowMs])) as [number, number];
          return { count, resetInMs };
        }),
      get: (key) =>
        guard(async () => {
          const [count, resetInMs] = (await readAttempts.run(client, [keys.attempts(key)], [])) as [number, number];
          return { count, resetInMs };
        }),
      reset: (key) =>
        guard(async () => {
          await client.del(keys.attempts(key));
        }),
    },

    // Durable: a key written and then lost to a failover could already have signed tokens.
    signingKeys: {
      read: () =>
        guard(async () => {
          const value = await client.hget(keys.signingKeySet, "set");
          return value === null ? undefined : (JSON.parse(value) as SigningKeySet);
        }),
      claim: (slot, ttlMs) => guard(async () => (await durable(claimSlot, [keys.signingKeyClaim(slot)], [ttlMs])) === 1),
      replace: async (expectedGeneration, next, ttlMs) => {
        checkNextGeneration(expectedGeneration, next);
        return guard(async () => {
          const json = JSON.stringify(next);
          const [written, current] = (await durable(replaceKeySet, [keys.signingKeySet], [expectedGeneration, next.generation, json, ttlMs])) as [number, string | null];
          if (written === 1) return { kind: "written" as const, set: JSON.parse(json) as SigningKeySet };
          return { kind: "conflict" as const, set: current === null || current === undefined ? undefined : (JSON.parse(current) as SigningKeySet) };
        });
      },
    },
    clientAssertions: {
      // SET NX PX is atomic on its own; durable, so that a failover cannot make a used jti usable again.
      use: (clientId, jti, expiresAt) =>
        guard(async () => (await durable(setIfAbsent, [keys.clientAssertion(clientId, jti)], [Math.max(1, expiresAt - clock())])) === 1),
    },

    // Durable: a block lost to a failover would let a blocked user back in.
    userStates: {
      get: (subject) =>
        guard(async () => {
          const value = await client.get(keys.userState(subject));
          return value === null ? undefined : (JSON.parse(value) as UserState);
        }),
      put: (subject, state) =>
        guard(async () => {
          await durable(setForever, [keys.userState(subject)], [JSON.stringify(state)]);
        }),
      delete: (subject) =>
        guard(async () => {
          await durable(deleteKey, [keys.userState(subject)], []);
        }),
    },

    ping: () =>
      guard(async () => {
        await client.ping();
      }),

    close,
  };
}

function parseFamily(grantId: string, fields: string[]): RefreshFamily {
  const record = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) record.set(fields[i]!, fields[i + 1]!);
  return {
    grantId,
    clientId: record.get("clientId")!,
    subject: record.get("subject")!,
    scopes: JSON.parse(record.get("scopes")!) as string[],
    authTime: Number(record.get("authTime")),
    tokenHash: record.get("tokenHash")!,
    tokenExpiresAt: Number(record.get("tokenExpiresAt")),
    familyExpiresAt: Number(record.get("familyExpiresAt")),
    ...(record.get("sid") ? { sid: record.get("sid")! } : {}),
    ...(record.get("resources") ? { resources: JSON.parse(record.get("resources")!) as string[] } : {}),
  };
}

/** Keyless: how many replicas the node it runs on has connected. */
const CONNECTED_REPLICAS = "return tonumber(string.match(redis.call('INFO', 'replication'), 'connected_slaves:(%d+)') or '0')";

/** KEYS: one key. ARGV: value, ttl ms. SET as a script, so that it can run durably like the others. */
const setWithTtl = defineScript(`return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])`);

/** KEYS: a set. ARGV: member, ttl ms. Adds the member; the set's TTL only ever grows (a subject's index of consents). */
const indexMember = defineScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`);

/** KEYS: one key. */
const deleteKey = defineScript(`return redis.call('DEL', KEYS[1])`);

/** KEYS: one key. ARGV: value. An administrator's record: no TTL (store.ts UserStateStore). */
const setForever = defineScript(`return redis.call('SET', KEYS[1], ARGV[1])`);

/** KEYS: an index set. ARGV: member, ttl ms. Adds the member; the set's TTL only ever grows, to its longest-lived member's. */
const addToIndex = defineScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[2]))) end
return 1
`);

/** KEYS: a sorted set. ARGV: score, member, ttl ms. Adds the member; the set's TTL only ever grows. */
const scheduleDue = defineScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`);

/** KEYS: a sorted set. ARGV: now, limit. Removes and returns (member, score) pairs due at now, in one step. */
const takeDue = defineScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do redis.call('ZREM', KEYS[1], due[i]) end
return due
`);

/** KEYS: a set. Returns its members and deletes it, in one step. */
const takeSet = defineScript(`
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
`);

/** KEYS: request. GETDEL as a script, so it can run durably like the others. */
const takeRequest = defineScript(`return redis.call('GETDEL', KEYS[1])`);

/** KEYS: access token revocation marker. ARGV: ttl ms. */
const setIfAbsent = defineScript(`return redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) and 1 or 0`);
const revokeAccessToken = defineScript(`return redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])`);

/** KEYS: code. ARGV: tombstone ttl ms. Value "<grantId>|<json>"; a redeemed code becomes "!<grantId>". */
const redeemCode = defineScript(`
local value = redis.call('GET', KEYS[1])
if not value then return false end
if string.sub(value, 1, 1) == '!' then return value end
local sep = string.find(value, '|', 1, true)
redis.call('SET', KEYS[1], '!' .. string.sub(value, 1, sep - 1), 'PX', ARGV[1])
return value
`);

/** KEYS: family, revoked. ARGV: clientId, subject, scopes, authTime, tokenHash, tokenExpiresAt, familyExpiresAt, ttl ms, sid, resources. */
const createFamily = defineScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'clientId', ARGV[1], 'subject', ARGV[2], 'scopes', ARGV[3], 'authTime', ARGV[4],
  'tokenHash', ARGV[5], 'tokenExpiresAt', ARGV[6], 'familyExpiresAt', ARGV[7], 'sid', ARGV[9], 'resources', ARGV[10])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return 1
`);

/** KEYS: family, revoked. */
const getFamily = defineScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
return redis.call('HGETALL', KEYS[1])
`);

/**
 * KEYS: family, used marker of the presented token, revoked.
 * ARGV: presentedHash, nextHash, nextTokenExpiresAt, sealed, now, graceMs, revokedTtlMs.
 * The same decision as the memory store's rotate, step for step.
 */
const rotateFamily = defineScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return {'unknown'} end
local f = redis.call('HMGET', KEYS[1], 'tokenHash', 'previousHash', 'rotatedAt', 'sealed', 'familyExpiresAt', 'tokenExpiresAt')
if not f[1] then return {'unknown'} end
local now = tonumber(ARGV[5])
if f[1] == ARGV[1] then
  if tonumber(f[6]) <= now then return {'unknown'} end
  redis.call('SET', KEYS[2], '1', 'PX', math.max(1, tonumber(f[5]) - now))
  redis.call('HSET', KEYS[1], 'tokenHash', ARGV[2], 'tokenExpiresAt', ARGV[3], 'previousHash', ARGV[1],
    'rotatedAt', ARGV[5], 'sealed', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[3]) - now))
  return {'rotated'}
end
local grace = tonumber(ARGV[6])
if f[2] == ARGV[1] and grace > 0 and f[4] and f[4] ~= '' and now - tonumber(f[3]) <= grace then
  return {'grace', f[4]}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[7])
  return {'reused'}
end
return {'unknown'}
`);

/** KEYS: family, revoked. ARGV: revoked ttl ms. */
const revokeGrant = defineScript(`
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', math.max(1, tonumber(ARGV[1])))
return 1
`);

/** KEYS: counter. ARGV: window ms. Returns {count, ms until the window ends}. */
const hitAttempts = defineScript(`
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`);

/** KEYS: counter. */
const readAttempts = defineScript(`
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {count, ttl}
`);

/** KEYS: claim. ARGV: ttl ms. 1 for the one claimer, 0 while the claim holds. */
const claimSlot = defineScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
`);

/**
 * KEYS: signing key set (a hash: generation, set). ARGV: expected generation,
 * next generation, next set (JSON), ttl ms. Compare-and-set on the generation:
 * {1} when written, {0, current set} when another writer got there first.
 */
const replaceKeySet = defineScript(`
local generation = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
if generation ~= tonumber(ARGV[1]) then return {0, redis.call('HGET', KEYS[1], 'set')} end
redis.call('HSET', KEYS[1], 'generation', ARGV[2], 'set', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1}
`);

/**
 * One subscriber connection per process for revocation announcements. When it
 * breaks, every subscriber is told and dropped: announcements may have been
 * missed, so caches fed by them must not be trusted until resubscribed.
 */
function createSubscriptions(client: RedisClient, channel: string) {
  const listeners = new Map<symbol, { onRevocation: (r: Revocation, tenant: string | undefined) => void; onBroken: (e: Error) => void }>();
  let subscriber: RedisClient | undefined;

  const breakAll = (reason: Error) => {
    const broken = [...listeners.values()];
    listeners.clear();
    for (const listener of broken) listener.onBroken(reason);
  };

  const connect = (): RedisClient => {
    if (subscriber !== undefined) return subscriber;
    const created: RedisClient = "isCluster" in client && client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate();
    created.on("message", (from: string, message: string) => {
      if (from !== channel) return;
      let revocation: Revocation;
      let tenant: string | undefined;
      try {
        const { tenant: named, ...rest } = JSON.parse(message) as Revocation & { tenant?: unknown };
        revocation = rest;
        tenant = typeof named === "string" ? named : undefined;
      } catch {
        return;
      }
      for (const listener of listeners.values()) listener.onRevocation(revocation, tenant);
    });
    created.on("error", () => {
      // Connection errors surface as "close"; ioredis reconnects by itself.
    });
    created.on("close", () => breakAll(new Error("revocation subscription lost its Redis connection")));
    subscriber = created;
    return created;
  };

  return {
    async add(onRevocation: (r: Revocation, tenant: string | undefined) => void, onBroken: (e: Error) => void): Promise<RevocationSubscription> {
      const connection = connect();
      try {
        if (!(await waitUntilReady(connection, 2_000))) throw new Error(`Redis not ready (status ${connection.status})`);
        // Resolves when Redis confirms the subscription; from then on nothing is missed.
        await connection.subscribe(channel);
      } catch (error) {
        throw new StoreUnavailableError(error);
      }
      const id = Symbol("subscriber");
      listeners.set(id, { onRevocation, onBroken });
      return { unsubscribe: () => listeners.delete(id) };
    },
    close() {
      listeners.clear();
      subscriber?.disconnect();
    },
  };
}
