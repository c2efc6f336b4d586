/**
 * The login limiter of SPEC §4 kept in Redis, for deployments that set `REDIS_URL`: every
 * instance on the same Redis sees the same counts. Same contract as the database limiter
 * (src/store/login-limiter.ts), with the same keys: each counter — `pair:` (username key +
 * client address) and `addr:` (client address) for failures and shed attempts, `ok:` (client
 * address) for successful logins, all SHA-256 digests — is a sorted set of events scored by
 * their time, and its count is the number of members inside the sliding window. Each call is
 * one Lua script, so it is atomic and costs one round trip; members are unique, so concurrent
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
import { StoreUnavailableError, TooManyAttemptsError } from '../core/errors.ts';
import type { LoginLimiter } from '../core/login-limiter.ts';
import { addressFailureKey, addressLoginKey, loginLimits, pairFailureKey, type DatabaseLoginLimiterOptions } from './login-limiter.ts';

/**
 * Limits (as the database limiter's) and where the keys live.
 *
 * @example
 * createRedisLoginLimiter(redis, { maxFailures: 5, windowSeconds: 900, keyPrefix: 'myapp:lf:' });
 */
export interface RedisLoginLimiterOptions extends DatabaseLoginLimiterOptions {
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
 * Records one event in every counter key given: adds it, drops members that left the window
 * (score ≤ cutoff: an event counts while `now - at < window`) and lets the key expire one
 * window after its newest event. ARGV: now, cutoff, window ms, a unique member.
 */
const RECORD_EVENT = `
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
end
return 0`;

/**
 * A successful login: clears the pair (KEYS[1]) and records the event in the address's login
 * counter (KEYS[2]) as RECORD_EVENT does. ARGV as RECORD_EVENT's.
 */
const RECORD_SUCCESS = `
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 0`;

/**
 * For each counter key, the score of its max-th newest failure still in the window (newer than
 * the cutoff), or '' when it holds fewer: the counter refuses until that failure leaves.
 * ARGV: cutoff, then one offset (max - 1) per key.
 */
const REFUSING_FAILURES = `
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
 * A LoginLimiter over Redis, shared by every instance that uses the same Redis and key prefix.
 *
 * @example
 * const limiter = createRedisLoginLimiter(createRedisClient(process.env.REDIS_URL!));
 * const service = createAuthService({ store, secretKey, issuer, limiter });
 */
export function createRedisLoginLimiter(redis: Redis, options: RedisLoginLimiterOptions = {}): LoginLimiter {
  const { maxFailures, addressMaxFailures, addressMaxLogins, windowMs } = loginLimits(options);
  const prefix = options.keyPrefix ?? 'portcullis:lf:';
  const pairKey = (usernameKey: string, address: string): string => prefix + pairFailureKey(usernameKey, address);
  const addressKey = (address: string): string => prefix + addressFailureKey(address);
  const loginKey = (address: string): string => prefix + addressLoginKey(address);
  const record = (keys: string[], now: number): Promise<unknown> => redis.eval(RECORD_EVENT, keys.length, ...keys, now, now - windowMs, windowMs, randomUUID());

  return {
    async check(usernameKey, address, now) {
      const found = (await guard(() =>
        redis.eval(
          REFUSING_FAILURES,
          3,
          pairKey(usernameKey, address),
          addressKey(address),
          loginKey(address),
          now - windowMs,
          maxFailures - 1,
          addressMaxFailures - 1,
          addressMaxLogins - 1,
        ),
      )) as string[];
      // A counter refuses until its max-th newest failure leaves the window (as the database limiter).
      const until = Math.max(...found.map((score) => (score === '' ? -Infinity : Number(score) + windowMs)));
      // Retry-After: the seconds until enough failures left the window (SPEC §4).
      if (until > now) throw new TooManyAttemptsError((until - now) / 1000);
    },

    recordFailure: (usernameKey, address, now) =>
      guard(async () => {
        await record([pairKey(usernameKey, address), addressKey(address)], now);
      }),

    // SPEC §4: an attempt shed with 503 counts toward the address's limit, not the pair's.
    recordShed: (address, now) =>
      guard(async () => {
        await record([addressKey(address)], now);
      }),

    recordSuccess: (usernameKey, address, now) =>
      guard(async () => {
        // SPEC §4: a success resets the pair only; the address keeps its failure count, and
        // its successful logins are bounded too (a flood of right passwords). One script:
        // atomic, one round trip.
        await redis.eval(RECORD_SUCCESS, 2, pairKey(usernameKey, address), loginKey(address), now, now - windowMs, windowMs, randomUUID());
      }),

    ping: () =>
      guard(async () => {
        await redis.ping();
      }),
  };
}
