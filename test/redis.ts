/**
 * Redis for tests. The server is `PORTCULLIS_TEST_REDIS_URL` when set, else
 * `redis://127.0.0.1:6379` if something answers there. Every suite writes under a key prefix
 * of its own, `portcullis-test:<random>:`, and deletes its keys afterwards, so runs never see
 * each other's counts. With no server the Redis variants are skipped with a reason that says
 * so (`PORTCULLIS_TEST_REQUIRE_REDIS=1` turns that into a failure, for CI).
 *
 * @example
 * const server = await redisServerOrSkip();
 * describe('on Redis', { skip: server.skip }, () => { … const redis = await testRedis(server.url!) … });
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../src/store/redis-login-limiter.ts';
import { redactUrl } from './pg.ts';

export const DEFAULT_REDIS_SERVER = 'redis://127.0.0.1:6379';

let probed: Promise<{ url: string; skip: false } | { url: undefined; skip: string }> | undefined;

/** Finds the Redis server once per process: its URL, or why the Redis tests are skipped. */
export function redisServerOrSkip(): Promise<{ url: string; skip: false } | { url: undefined; skip: string }> {
  return (probed ??= (async () => {
    const url = process.env.PORTCULLIS_TEST_REDIS_URL || DEFAULT_REDIS_SERVER;
    // The connection error says more ("connect ECONNREFUSED …") than the failed command.
    let connectionError: Error | undefined;
    const redis = createRedisClient(url, { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000, onError: (error) => (connectionError ??= error) });
    try {
      await redis.ping();
      return { url, skip: false as const };
    } catch (error) {
      const reason = `Redis tests skipped: no Redis at ${redactUrl(url)} (${(connectionError ?? (error as Error)).message}); set PORTCULLIS_TEST_REDIS_URL=redis://… to run them`;
      if (process.env.PORTCULLIS_TEST_REQUIRE_REDIS === '1') throw new Error(`${reason} — but PORTCULLIS_TEST_REQUIRE_REDIS=1`);
      // One line on stderr as well as the skip reason, so a skipped Redis run is never silent.
      console.error(reason);
      return { url: undefined, skip: reason };
    } finally {
      redis.disconnect();
    }
  })());
}

/** A client and a key prefix of its own; `close()` deletes every key under the prefix. */
export interface TestRedis {
  redis: Redis;
  keyPrefix: string;
  /** The keys written under the prefix so far. */
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

/** Connects to the test Redis with a fresh random key prefix. */
export function testRedis(url: string): TestRedis {
  const redis = createRedisClient(url);
  const keyPrefix = `portcullis-test:${randomBytes(6).toString('hex')}:`;
  const keys = async (): Promise<string[]> => {
    const found: string[] = [];
    // SCAN, bounded: a test writes a few hundred keys at most.
    let cursor = '0';
    for (let round = 0; round < 10_000; round++) {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      found.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
    return found;
  };
  return {
    redis,
    keyPrefix,
    keys,
    async close() {
      try {
        const left = await keys();
        if (left.length > 0) await redis.del(...left);
      } finally {
        await redis.quit().catch(() => redis.disconnect());
      }
    },
  };
}
