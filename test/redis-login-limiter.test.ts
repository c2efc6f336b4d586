/**
 * The Redis login limiter's own contract (SPEC §4), the same as the database limiter's, on a
 * real Redis; the HTTP cases run against it in login-limiter.test.ts. Also: instances on one
 * Redis share counts, an unreachable Redis answers 503 instead of hanging, and the runtime
 * uses Redis when REDIS_URL is set.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createManualClock } from '../src/core/clock.ts';
import { loadConfig } from '../src/config.ts';
import { ConfigError, StoreUnavailableError } from '../src/core/errors.ts';
import { usernameKey } from '../src/core/username.ts';
import { buildApp } from '../src/app.ts';
import { openRuntime } from '../src/runtime.ts';
import { addressFailureKey, addressLoginKey, pairFailureKey, type LoginLimiter } from '../src/core/login-limiter.ts';
import { createRedisClient, createRedisLoginLimiter, type RedisLoginLimiterOptions } from '../src/store/redis-login-limiter.ts';
import { closedLoopbackPort, JOHN, refusal, tempDir, TEST_SECRET } from './helpers.ts';
import { redisServerOrSkip, testRedis, type TestRedis } from './redis.ts';

const A = '203.0.113.1';
const B = '198.51.100.7';
const T0 = 1_700_000_000_000;
const key = usernameKey('johndoe');
const options = { maxFailures: 3, windowSeconds: 60, addressMaxFailures: 10 };

const server = await redisServerOrSkip();


describe('Redis login limiter', { skip: server.skip }, () => {
  let redis: TestRedis;
  before(() => {
    redis = testRedis(server.url as string);
  });
  after(() => redis.close());

  /** A limiter under a prefix of its own, so the tests share no counts. */
  let n = 0;
  const limiter = (limits: RedisLoginLimiterOptions = options): LoginLimiter =>
    createRedisLoginLimiter(redis.redis, { ...limits, keyPrefix: `${redis.keyPrefix}${++n}:` });

  test('a failure counts while it is younger than the window, to the millisecond', async () => {
    const l = limiter();
    for (let i = 0; i < 3; i++) await l.recordFailure(key, A, T0 + i * 1000);
    assert.equal((await refusal(l.check(key, A, T0 + 2000))).retryAfterSeconds, 58);
    assert.equal((await refusal(l.check(key, A, T0 + 59_999))).retryAfterSeconds, 0.001);
    await l.check(key, A, T0 + 60_000);
    await l.check(key, B, T0 + 2000);
    await l.check(usernameKey('alice'), A, T0 + 2000);
  });

  test('refuses the pair after its max-th failure, whatever the password, and still lets the user in from another address', async () => {
    const l = limiter();
    for (let i = 0; i < 2; i++) await l.recordFailure(key, A, T0 + i * 10_000);
    await l.check(key, A, T0 + 20_000);
    await l.recordFailure(key, A, T0 + 20_000);
    // check runs before the password is verified, so the right password is refused as well.
    const error = await refusal(l.check(key, A, T0 + 20_000));
    // The oldest counted failure (at 0 s) leaves the 60 s window in 40 s.
    assert.equal(error.headers()['retry-after'], '40');
    await l.check(key, B, T0 + 20_000);
  });

  test('Retry-After waits for enough failures to leave when racing requests pushed the count past the limit', async () => {
    const l = limiter();
    for (let i = 0; i < 5; i++) await l.recordFailure(key, A, T0 + i * 1000);
    // Five failures, limit three: it takes the third newest (at 2 s) leaving to go below it.
    const error = await refusal(l.check(key, A, T0 + 10_000));
    assert.equal(error.retryAfterSeconds, 52);
    assert.equal(error.headers()['retry-after'], '52');
    await l.check(key, A, T0 + 62_000);
  });

  test('the window slides: failures older than it stop counting', async () => {
    const l = limiter();
    for (let i = 0; i < 3; i++) await l.recordFailure(key, A, T0 + i * 20_000); // at 0, 20, 40 s
    assert.equal((await refusal(l.check(key, A, T0 + 59_999))).retryAfterSeconds, 0.001);
    // The failure at 0 s has left; one more failure makes three again, refused until 20 s leaves.
    await l.check(key, A, T0 + 60_000);
    await l.recordFailure(key, A, T0 + 60_000);
    assert.equal((await refusal(l.check(key, A, T0 + 60_000))).retryAfterSeconds, 20);
    await l.check(key, A, T0 + 80_000);
  });

  test('counts an unknown username exactly as a known one', async () => {
    const l = limiter();
    const ghost = usernameKey('ghost-user');
    for (let i = 0; i < 3; i++) await l.recordFailure(ghost, A, T0 + i * 1000);
    assert.equal((await refusal(l.check(ghost, A, T0 + 2000))).retryAfterSeconds, 58);
  });

  test('concurrent failures are all counted', async () => {
    const l = limiter({ maxFailures: 20, windowSeconds: 60, addressMaxFailures: 1000 });
    await Promise.all(Array.from({ length: 19 }, () => l.recordFailure(key, A, T0)));
    await l.check(key, A, T0);
    await l.recordFailure(key, A, T0);
    await refusal(l.check(key, A, T0));
  });

  test('recordSuccess clears the pair and leaves the address count', async () => {
    const l = limiter({ maxFailures: 3, windowSeconds: 60, addressMaxFailures: 4 });
    for (let i = 0; i < 3; i++) await l.recordFailure(key, A, T0);
    await refusal(l.check(key, A, T0));
    await l.recordSuccess(key, A, T0);
    await l.check(key, A, T0);
    await l.recordFailure(usernameKey('alice'), A, T0);
    await refusal(l.check(usernameKey('carol'), A, T0));
  });

  test('refuses every username from an address after its address-wide limit', async () => {
    const l = limiter({ maxFailures: 3, windowSeconds: 60, addressMaxFailures: 4 });
    for (let i = 0; i < 4; i++) await l.recordFailure(usernameKey(`spray-${i}`), A, T0);
    assert.equal((await refusal(l.check(usernameKey('never-seen'), A, T0))).retryAfterSeconds, 60);
    await l.check(usernameKey('never-seen'), B, T0);
  });

  test('refused checks are not failures', async () => {
    const l = limiter();
    for (let i = 0; i < 3; i++) await l.recordFailure(key, A, T0);
    for (let i = 0; i < 20; i++) await refusal(l.check(key, A, T0 + i * 1000));
    // Had the refusals counted, the address (limit 10) would refuse every username by now.
    await l.check(usernameKey('alice'), A, T0 + 20_000);
    await l.check(key, A, T0 + 60_000);
  });

  test('a shed attempt counts toward the address only, never the pair', async () => {
    const l = limiter({ maxFailures: 3, windowSeconds: 60, addressMaxFailures: 4 });
    for (let i = 0; i < 3; i++) await l.recordShed(A, T0 + i * 1000);
    await l.check(key, A, T0 + 3000);
    await l.recordShed(A, T0 + 3000);
    // Four shed attempts: the address is refused for every username, until the first leaves.
    assert.equal((await refusal(l.check(usernameKey('alice'), A, T0 + 3000))).retryAfterSeconds, 57);
    await l.check(key, B, T0 + 3000);
    // A success does not clear them (they are the address's, not the pair's).
    await l.recordSuccess(key, A, T0 + 3000);
    await refusal(l.check(key, A, T0 + 3000));
    await l.check(key, A, T0 + 60_000);
  });

  test('successful logins count per address, in the window, up to their own limit', async () => {
    const l = limiter({ maxFailures: 3, windowSeconds: 60, addressMaxFailures: 10, addressMaxLogins: 3 });
    for (let i = 0; i < 2; i++) await l.recordSuccess(usernameKey(`user-${i}`), A, T0 + i * 1000);
    await l.check(key, A, T0 + 2000);
    await l.recordSuccess(key, A, T0 + 2000);
    assert.equal((await refusal(l.check(key, A, T0 + 2000))).retryAfterSeconds, 58);
    await refusal(l.check(usernameKey('alice'), A, T0 + 2000));
    await l.check(key, B, T0 + 2000);
    await l.check(key, A, T0 + 60_000);
  });

  test('counts an IPv6 client per /64 and IPv4-mapped IPv6 as its IPv4 address', async () => {
    const l = limiter();
    for (let i = 1; i <= 3; i++) await l.recordFailure(key, `2001:db8:1:2::${i}`, T0);
    await refusal(l.check(key, '2001:db8:1:2:ffff:ffff:ffff:ffff', T0));
    await l.check(key, '2001:db8:1:3::1', T0);
    for (let i = 0; i < 3; i++) await l.recordFailure(key, '192.0.2.99', T0);
    await refusal(l.check(key, '::ffff:192.0.2.99', T0));
  });

  test('keeps hashed keys only, under its prefix, each expiring one window after its last failure', async () => {
    const keyPrefix = `${redis.keyPrefix}hygiene:`;
    const l = createRedisLoginLimiter(redis.redis, { ...options, keyPrefix });
    await l.recordFailure(key, A, T0);
    const keys = (await redis.keys()).filter((k) => k.startsWith(keyPrefix)).sort();
    assert.deepEqual(keys, [keyPrefix + addressFailureKey(A), keyPrefix + pairFailureKey(key, A)].sort());
    for (const k of keys) {
      assert.ok(!k.includes('johndoe') && !k.includes(A), k);
      const ttl = await redis.redis.pttl(k);
      assert.ok(ttl > 0 && ttl <= 60_000, `${k}: ${ttl}`);
    }
    // A failure that left the window is dropped by the next one, not kept until the key expires.
    await l.recordFailure(key, A, T0 + 120_000);
    assert.equal(await redis.redis.zcard(keyPrefix + pairFailureKey(key, A)), 1);
    // A success clears the pair and counts under its own expiring key.
    await l.recordSuccess(key, A, T0 + 120_000);
    assert.equal(await redis.redis.exists(keyPrefix + pairFailureKey(key, A)), 0);
    const ttl = await redis.redis.pttl(keyPrefix + addressLoginKey(A));
    assert.ok(ttl > 0 && ttl <= 60_000, `${ttl}`);
  });

  test('takes any username and address text, NUL bytes and all, as data', async () => {
    const l = limiter();
    const nasty = usernameKey("x'); FLUSHALL --\u0000\u{1F600}\r\n*1\r\n$8\r\nFLUSHALL\r\n".repeat(50));
    for (let i = 0; i < 3; i++) await l.recordFailure(nasty, 'not\u0000an address', T0);
    await refusal(l.check(nasty, 'not\u0000an address', T0));
    await l.check(nasty, A, T0);
  });

  test('two instances on the same Redis see each other’s failures and successes', async () => {
    const keyPrefix = `${redis.keyPrefix}shared:`;
    const other = createRedisClient(server.url as string);
    try {
      const one = createRedisLoginLimiter(redis.redis, { ...options, keyPrefix });
      const two = createRedisLoginLimiter(other, { ...options, keyPrefix });
      await one.recordFailure(key, A, T0);
      await two.recordFailure(key, A, T0 + 1000);
      await one.recordFailure(key, A, T0 + 2000);
      assert.equal((await refusal(two.check(key, A, T0 + 2000))).retryAfterSeconds, 58);
      await two.recordSuccess(key, A, T0 + 2000);
      await one.check(key, A, T0 + 2000);
    } finally {
      await other.quit();
    }
  });

  test('the runtime counts failed logins in Redis when REDIS_URL is set', async () => {
    const folder = tempDir();
    const clock = createManualClock(T0);
    const env = {
      DATABASE_URL: `sqlite:${join(folder.path, 'runtime.db')}`,
      REDIS_URL: server.url as string,
      PORTCULLIS_SECRET_KEY: TEST_SECRET,
      PORTCULLIS_LOGIN_MAX_FAILURES: '2',
      PORTCULLIS_LOGIN_WINDOW: '30',
      PORTCULLIS_ARGON2_MEMORY: '1024',
      PORTCULLIS_ARGON2_TIME: '1',
      PORTCULLIS_ARGON2_PARALLELISM: '1',
    };
    // A username of its own: the runtime writes under the default prefix.
    const username = `redis-runtime-${redis.keyPrefix.split(':')[1]}`;
    const pair = `portcullis:lf:${pairFailureKey(usernameKey(username), A)}`;
    const runtime = await openRuntime(loadConfig({ env }), { clock });
    try {
      await runtime.service.createUser({ username, password: JOHN.password });
      const grant = (password: string) =>
        runtime.service.passwordGrant({ username, password, scope: undefined, client: { address: A, userAgent: null, clientId: null } });
      for (let i = 0; i < 2; i++) await assert.rejects(grant('wrong-password'), { code: 'PCL_INVALID_GRANT' });
      assert.equal(await redis.redis.zcard(pair), 2);
      assert.equal((await refusal(grant(JOHN.password))).retryAfterSeconds, 30);
      // Nothing was counted in the database.
      assert.equal((await runtime.store.database.db.selectFrom('login_failures').select('key').execute()).length, 0);
      clock.advance(30_000);
      await grant(JOHN.password);
      assert.equal(await redis.redis.exists(pair), 0);
    } finally {
      await runtime.close();
      await redis.redis.del(pair, `portcullis:lf:${addressFailureKey(A)}`);
      folder.remove();
    }
  });
});

test('an unreachable Redis gives StoreUnavailableError (503) instead of hanging', { timeout: 30_000 }, async () => {
  const port = await closedLoopbackPort();
  const redis = createRedisClient(`redis://127.0.0.1:${port}`);
  try {
    const limiter = createRedisLoginLimiter(redis);
    for (const call of [limiter.check(key, A, T0), limiter.recordFailure(key, A, T0), limiter.recordSuccess(key, A, T0), limiter.ping?.()]) {
      await assert.rejects(call as Promise<void>, (error) => error instanceof StoreUnavailableError && error.statusCode === 503);
    }
  } finally {
    redis.disconnect();
  }
});

test('/readyz answers 503 while the Redis of the limiter cannot be reached', { timeout: 30_000 }, async () => {
  const port = await closedLoopbackPort();
  const folder = tempDir();
  const runtime = await openRuntime(
    loadConfig({ env: { DATABASE_URL: `sqlite:${join(folder.path, 'ready.db')}`, REDIS_URL: `redis://127.0.0.1:${port}`, PORTCULLIS_SECRET_KEY: TEST_SECRET } }),
  );
  const app = await buildApp({ service: runtime.service, logger: false });
  try {
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(response.statusCode, 503);
    assert.equal(typeof response.json().detail, 'string');
  } finally {
    await app.close();
    await runtime.close();
    folder.remove();
  }
});

test('REDIS_URL must be a redis:// or rediss:// URL, and its password stays out of the error', () => {
  assert.equal(loadConfig({ env: {} }).redisUrl, undefined);
  assert.equal(loadConfig({ env: { REDIS_URL: 'rediss://:pw@cache.internal:6380/2' } }).redisUrl, 'rediss://:pw@cache.internal:6380/2');
  for (const bad of ['127.0.0.1:6379', 'http://127.0.0.1:6379', 'redis://user:hunter2@host with space']) {
    assert.throws(() => loadConfig({ env: { REDIS_URL: bad } }), (error) => error instanceof ConfigError && /REDIS_URL/.test(error.message) && !error.message.includes('hunter2'), bad);
  }
});

test('refuses Redis limiter limits that are not whole numbers of at least 1 when it is built', () => {
  const redis = createRedisClient('redis://127.0.0.1:1', { connectTimeoutMs: 100 });
  try {
    for (const bad of [{ maxFailures: 0 }, { windowSeconds: 1.5 }, { addressMaxFailures: -1 }, { addressMaxLogins: 0 }]) {
      assert.throws(() => createRedisLoginLimiter(redis, bad), ConfigError, JSON.stringify(bad));
    }
  } finally {
    redis.disconnect();
  }
});
