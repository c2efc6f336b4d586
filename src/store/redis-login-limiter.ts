/**
 * The counting half of the login limiter (the policy is core/login-limiter.ts) kept in Redis,
 * for deployments that set `REDIS_URL`: every instance on the same Redis sees the same counts.
 * Same keys as the database counter (`pair:`, `addr:`, `ok:`, SHA-256 digests), under a
 * prefix: each is a sorted set of events scored by their time, and its count is the number of
 * members inside the sliding window. Adding and asking are one Lua script each, so each is
 * atomic and costs one round trip (one per login check); members are unique, so concurrent
 * events are never lost. A key expires one window after its last event, so Redis holds
 * nothing that no longer counts.
 *
 * Time is the `now` the caller passes (the service's clock), never Redis's: scores are
 * compared with it, and only the expiry of a whole key runs on Redis's clock.
 *
 * A Redis that cannot be reached never hangs a login: connecting and every command are bounded
 * by timeouts, and the failure surfaces as StoreUnavailableError (503, SPEC §4). The client
 * reconnects by itself, so the service recovers when Redis returns.
 *
 * @example
 * const redis = createRedisClient(process.env.REDIS_URL!);
 * const limiter = createRedisLoginLimiter(redis, { maxFailures: 5, windowSeconds: 900, addressMaxFailures: 100, addressMaxLogins: 1000 });
 * const service = createAuthService({ store, secretKey, issuer, limiter });
 */
import { randomUUID } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import { StoreUnavailableError } from '../core/errors.ts';
import { createLoginLimiter, type LoginCounter, type LoginLimiter, type LoginLimits } from '../core/login-limiter.ts';

/**
 * The limits (`LoginLimits`, as the database limiter's) and where the keys live.
 *
 * @example
 * createRedisLoginLimiter(redis, { maxFailures: 5, windowSeconds: 900, keyPrefix: 'myapp:lf:' });
 */
export interface RedisLoginLimiterOptions extends LoginLimits {
  /** Prefix of every key the limiter writes. Default `portcullis:lf:`. */
  keyPrefix?: string | undefined;
}

/**
 * Bounds of the Redis connection, in milliseconds.
 *
 * @example
 * const redis = createRedisClient('redis://127.0.0.1:6379', { commandTimeoutMs: 1000 });
 */
export interface RedisClientOptions {
  /** How long one connection attempt may take. Default 2000. */
  connectTimeoutMs?: number | undefined;
  /** How long one command may wait for its answer, queued while reconnecting included. Default 2000. */
  commandTimeoutMs?: number | undefined;
  /** Told about connection errors (the client keeps reconnecting on its own). Default: ignored. */
  onError?: ((error: Error) => void) | undefined;
}

/**
 * A Redis client whose every command fails within bounded time while Redis is away, instead of
 * queueing without end: commands issued while (re)connecting wait in the offline queue at most
 * `commandTimeoutMs`, and the queue is flushed (rejected) after every second failed reconnect.
 * Reconnects keep going, backing off to one attempt per 2 s. Close it with `quit()`.
 *
 * @example
 * const redis = createRedisClient('redis://127.0.0.1:6379/0');
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): Redis {
  const redis = new Redis(url, {
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    commandTimeout: options.commandTimeoutMs ?? 2_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  // Without a listener ioredis prints every failed reconnect to stderr; the failures that
  // matter reach the caller as 503s.
  redis.on('error', options.onError ?? (() => {}));
  return redis;
}

/**
 * `LoginCounter.add`: records one event in every key given, drops members that left the
 * window (score ≤ since) and lets the key expire one window after its newest event.
 * ARGV: now, since, window ms (now - since), a unique member.
 */
const ADD_EVENT = `
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
end
return 0`;

/**
 * `LoginCounter.nthNewest`: for each key, the score of its n-th newest member newer than
 * `since`, or '' when it holds fewer. ARGV: since, then one offset (n - 1) per key.
 */
const NTH_NEWEST = `
local found = {}
for i, key in ipairs(KEYS) do
  local hit = redis.call('ZREVRANGEBYSCORE', key, '+inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', ARGV[i + 1], 1)
  found[i] = hit[2] or ''
end
return found`;

/**
 * Redis errors that mean "not now" rather than a bug: still loading its data, a script
 * running too long, a read-only replica, out of memory, a primary that lost its replicas.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|READONLY|OOM|MASTERDOWN|NOREPLICAS|TRYAGAIN|CLUSTERDOWN)\b/;

/** Runs one Redis command; an unreachable or unready Redis becomes StoreUnavailableError (503). */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    // Everything but a reply from Redis is the connection failing: refused, reset, timed out,
    // closed, or flushed from the offline queue after failed reconnects.
    if (!(error instanceof ReplyError) || TRANSIENT_REPLY.test((error as Error).message)) throw new StoreUnavailableError();
    throw error;
  }
}

/**
 * A LoginCounter over Redis, under `prefix`.
 *
 * @example
 * const counter = createRedisLoginCounter(createRedisClient(process.env.REDIS_URL!), 'portcullis:lf:');
 */
function createRedisLoginCounter(redis: Redis, prefix: string): LoginCounter {
  const prefixed = (keys: readonly string[]): string[] => keys.map((key) => prefix + key);
  return {
    add: (keys, now, since) =>
      guard(async () => {
        await redis.eval(ADD_EVENT, keys.length, ...prefixed(keys), now, since, now - since, randomUUID());
      }),
    nthNewest: (queries, since) =>
      guard(async () => {
        const keys = prefixed(queries.map(([key]) => key));
        const found = (await redis.eval(NTH_NEWEST, keys.length, ...keys, since, ...queries.map(([, n]) => n - 1))) as string[];
        return found.map((score) => (score === '' ? undefined : Number(score)));
      }),
    clear: (keys) =>
      guard(async () => {
        await redis.del(...prefixed(keys));
      }),
    ping: () =>
      guard(async () => {
        await redis.ping();
      }),
  };
}

/**
 * A LoginLimiter over Redis — SPEC §4's policy (`createLoginLimiter`) over Redis counts —
 * shared by every instance that uses the same Redis and key prefix.
 *
 * @example
 * const limiter = createRedisLoginLimiter(createRedisClient(process.env.REDIS_URL!));
 * const service = createAuthService({ store, secretKey, issuer, limiter });
 */
export function createRedisLoginLimiter(redis: Redis, options: RedisLoginLimiterOptions = {}): LoginLimiter {
  const { keyPrefix = 'portcullis:lf:', ...limits } = options;
  return createLoginLimiter(createRedisLoginCounter(redis, keyPrefix), limits);
}
