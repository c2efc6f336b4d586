/**
 * The failed-login limiter (SPEC §4): through `POST /token` as a client sees it — with the
 * database limiter on SQLite and on PostgreSQL, and with the Redis limiter — and the database
 * limiter's own contract (the Redis limiter's is in redis-login-limiter.test.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createManualClock } from '../src/core/clock.ts';
import { loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/core/errors.ts';
import { usernameKey } from '../src/core/username.ts';
import { openRuntime } from '../src/runtime.ts';
import { createDatabaseLoginLimiter, openStore, type KyselyStore } from '../src/store/index.ts';
import { limiterAddress } from '../src/core/limiter-address.ts';
import { addressFailureKey, pairFailureKey, type LoginLimiter } from '../src/core/login-limiter.ts';
import { createRedisLoginLimiter } from '../src/store/redis-login-limiter.ts';
import { createTestContext, JOHN, refusal, tempDir, TEST_SECRET, type TestContext } from './helpers.ts';
import { scratchDatabase, testDatabases } from './pg.ts';
import { redisServerOrSkip, testRedis } from './redis.ts';

const WINDOW_S = 900;
const MAX = 5;
const ADDRESS_MAX = 12;
const ADDRESS_MAX_LOGINS = 6;
const A = '203.0.113.1';
const B = '198.51.100.7';
const T_RUNTIME = 1_700_000_000_000;

const databases = await testDatabases();
const redisServer = await redisServerOrSkip();
const HTTP_LIMITS = { maxFailures: MAX, windowSeconds: WINDOW_S, addressMaxFailures: ADDRESS_MAX, addressMaxLogins: ADDRESS_MAX_LOGINS };

/** Where the HTTP cases count failures: the database limiter on each database, and Redis (over SQLite). */
const limiterVariants: { name: string; skip: string | false; open(): Promise<TestContext> }[] = [
  ...databases.map((database) => ({
    name: database.name,
    skip: database.skip,
    open: () => createTestContext({ databaseUrl: database.url, databaseLimiter: HTTP_LIMITS }),
  })),
  {
    name: 'redis',
    skip: redisServer.skip,
    async open() {
      const redis = testRedis(redisServer.url as string);
      const t = await createTestContext({ limiter: createRedisLoginLimiter(redis.redis, { ...HTTP_LIMITS, keyPrefix: redis.keyPrefix }) });
      return {
        ...t,
        async close() {
          await t.close();
          await redis.close();
        },
      };
    },
  },
];

/** Logs in from `address` (app.inject's remoteAddress is the client address Fastify sees). */
function attempt(t: TestContext, username: string, password: string, address: string): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress: address,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString(),
  });
}

function assertRefused(response: LightMyRequestResponse, retryAfter?: number): void {
  assert.equal(response.statusCode, 429, response.body);
  assert.deepEqual(response.json(), {
    error: 'temporarily_unavailable',
    error_description: 'Too many failed login attempts',
    detail: 'Too many failed login attempts',
  });
  assert.match(String(response.headers['retry-after']), /^[1-9]\d*$/);
  if (retryAfter !== undefined) assert.equal(response.headers['retry-after'], String(retryAfter));
}

function assertWrongPassword(response: LightMyRequestResponse): void {
  assert.equal(response.statusCode, 400, response.body);
  assert.equal((response.json() as { error: string }).error, 'invalid_grant');
}

for (const variant of limiterVariants) {
  describe(`failed-login limiting at POST /token on ${variant.name}`, { skip: variant.skip }, () => {
    let t: TestContext;
    before(async () => {
      t = await variant.open();
    });
    after(() => t.close());

    /** A user of its own for each test, so the tests share no counts. */
    const user = async (username: string) => {
      await t.service.createUser({ username, password: JOHN.password });
      return username;
    };
    const fail = async (username: string, address: string, times: number, stepMs = 0) => {
      for (let i = 0; i < times; i++) {
        assertWrongPassword(await attempt(t, username, 'wrong-password', address));
        t.clock.advance(stepMs);
      }
    };

    test('refuses the next login for a (user, address) pair after its 5th failure, even with the right password, with Retry-After', async () => {
      const name = await user('pair-user');
      const address = '203.0.113.10';
      await fail(name, address, MAX - 1, 10_000);
      assertWrongPassword(await attempt(t, name, 'wrong-password', address));
      // The oldest counted failure is 40 s old: it leaves the 900 s window in 860 s.
      assertRefused(await attempt(t, name, JOHN.password, address), WINDOW_S - 40);
      assertRefused(await attempt(t, name, 'wrong-password', address), WINDOW_S - 40);
      t.clock.advance(100_000);
      assertRefused(await attempt(t, name, JOHN.password, address), WINDOW_S - 140);
    });

    test('still lets the same user log in from another address', async () => {
      const name = await user('roaming-user');
      await fail(name, '203.0.113.11', MAX);
      assertRefused(await attempt(t, name, JOHN.password, '203.0.113.11'));
      const elsewhere = await attempt(t, name, JOHN.password, '198.51.100.11');
      assert.equal(elsewhere.statusCode, 200, elsewhere.body);
    });

    test('an attacker hammering a user from one address cannot lock the user out of other addresses', async () => {
      const name = await user('victim');
      const attacker = '192.0.2.66';
      for (let i = 0; i < 3 * ADDRESS_MAX; i++) {
        const response = await attempt(t, name, `guess-${i}`, attacker);
        assert.ok(response.statusCode === 400 || response.statusCode === 429, response.body);
      }
      assertRefused(await attempt(t, name, JOHN.password, attacker));
      for (const address of ['198.51.100.12', '198.51.100.13', '2001:db8:77::1']) {
        const response = await attempt(t, name, JOHN.password, address);
        assert.equal(response.statusCode, 200, `${address}: ${response.body}`);
      }
    });

    test('counts and answers an unknown username exactly as a known one', async () => {
      const known = await user('known-user');
      const ghost = 'ghost-user';
      const transcript = async (username: string, address: string) => {
        const start = t.clock();
        const lines: string[] = [];
        for (let i = 0; i < MAX + 2; i++) {
          const response = await attempt(t, username, 'wrong-password', address);
          lines.push(`${response.statusCode} ${response.headers['retry-after'] ?? '-'} ${response.body}`);
          t.clock.advance(7_000);
        }
        t.clock.set(start);
        return lines;
      };
      const knownLines = await transcript(known, '203.0.113.20');
      const ghostLines = await transcript(ghost, '203.0.113.21');
      assert.deepEqual(ghostLines, knownLines);
      assert.equal(knownLines.filter((line) => line.startsWith('429')).length, 2);
    });

    test('the window slides: failures older than it stop counting', async () => {
      const name = await user('sliding-user');
      const address = '203.0.113.30';
      const start = t.clock();
      await fail(name, address, MAX, 60_000); // at 0, 60, 120, 180, 240 s
      t.clock.set(start + WINDOW_S * 1000 - 1);
      assertRefused(await attempt(t, name, JOHN.password, address), 1);
      // The failure at 0 s has left the window; four remain, so one more failure is allowed …
      t.clock.set(start + WINDOW_S * 1000);
      assertWrongPassword(await attempt(t, name, 'wrong-password', address));
      // … and makes five again: refused until the one at 60 s leaves.
      assertRefused(await attempt(t, name, JOHN.password, address), 60);
      t.clock.set(start + (WINDOW_S + 60) * 1000);
      const response = await attempt(t, name, JOHN.password, address);
      assert.equal(response.statusCode, 200, response.body);
    });

    test('a success resets the pair', async () => {
      const name = await user('forgetful-user');
      const address = '203.0.113.40';
      await fail(name, address, MAX - 1);
      assert.equal((await attempt(t, name, JOHN.password, address)).statusCode, 200);
      // Without the reset these would be failures 5 to 8 of the pair.
      await fail(name, address, MAX - 1);
      assert.equal((await attempt(t, name, JOHN.password, address)).statusCode, 200);
    });

    test('refuses every login from an address after its address-wide limit, whatever the username', async () => {
      const address = '203.0.113.50';
      // Spread over usernames so that no pair reaches its own limit.
      for (let i = 0; i < ADDRESS_MAX; i++) assertWrongPassword(await attempt(t, `spray-${i % 4}`, 'wrong-password', address));
      const name = await user('bystander');
      assertRefused(await attempt(t, name, JOHN.password, address), WINDOW_S);
      assertRefused(await attempt(t, 'never-seen', 'whatever-password', address), WINDOW_S);
      assert.equal((await attempt(t, name, JOHN.password, '203.0.113.51')).statusCode, 200);
    });

    test('a success resets the pair only, not the address-wide count', async () => {
      const address = '203.0.113.55';
      const name = await user('lucky-user');
      // 11 failures from the address, 4 of them for the pair: neither limit is reached yet.
      await fail(name, address, MAX - 1);
      for (let i = 0; i < ADDRESS_MAX - MAX; i++) assertWrongPassword(await attempt(t, `other-${i % 3}`, 'wrong-password', address));
      assert.equal((await attempt(t, name, JOHN.password, address)).statusCode, 200);
      assertWrongPassword(await attempt(t, 'other-9', 'wrong-password', address));
      assertRefused(await attempt(t, name, JOHN.password, address));
    });

    test('refused (429) attempts do not count as failures, for the pair or the address', async () => {
      const name = await user('patient-user');
      const address = '203.0.113.60';
      const start = t.clock();
      await fail(name, address, MAX);
      for (let i = 0; i < 2 * ADDRESS_MAX; i++) {
        t.clock.advance(1_000);
        assertRefused(await attempt(t, name, 'wrong-password', address));
      }
      // Had the refusals counted, the address (limit 12) would now refuse every username.
      const other = await user('patient-friend');
      assert.equal((await attempt(t, other, JOHN.password, address)).statusCode, 200);
      // Had they counted for the pair, it would stay refused past the five failures' window.
      t.clock.set(start + WINDOW_S * 1000);
      assert.equal((await attempt(t, name, JOHN.password, address)).statusCode, 200);
    });

    test('counts an IPv6 client per /64, and IPv4-mapped IPv6 as its IPv4 address', async () => {
      const name = await user('v6-user');
      for (let i = 1; i <= MAX; i++) assertWrongPassword(await attempt(t, name, 'wrong-password', `2001:db8:1:2::${i.toString(16)}`));
      assertRefused(await attempt(t, name, JOHN.password, '2001:db8:1:2:ffff:ffff:ffff:ffff'));
      assert.equal((await attempt(t, name, JOHN.password, '2001:db8:1:3::1')).statusCode, 200);

      const mapped = await user('v4-mapped-user');
      await fail(mapped, '192.0.2.99', MAX);
      assertRefused(await attempt(t, mapped, JOHN.password, '::ffff:192.0.2.99'));
    });

    test('bounds successful logins per address: past the limit every login from it gets 429 until they leave the window', async () => {
      const name = await user('busy-user');
      const address = '203.0.113.80';
      const start = t.clock();
      for (let i = 0; i < ADDRESS_MAX_LOGINS; i++) {
        assert.equal((await attempt(t, name, JOHN.password, address)).statusCode, 200);
        t.clock.advance(1_000);
      }
      assertRefused(await attempt(t, name, JOHN.password, address), WINDOW_S - ADDRESS_MAX_LOGINS);
      assertRefused(await attempt(t, 'someone-else', 'whatever-password', address));
      // Another address is not affected, and the first success leaving the window lets one more in.
      assert.equal((await attempt(t, name, JOHN.password, '203.0.113.81')).statusCode, 200);
      t.clock.set(start + WINDOW_S * 1000);
      assert.equal((await attempt(t, name, JOHN.password, address)).statusCode, 200);
      assertRefused(await attempt(t, name, JOHN.password, address));
    });

    test('counts usernames by their NFKC, case-folded key', async () => {
      await user('keyed-user');
      const address = '203.0.113.70';
      for (const name of ['keyed-user', 'KEYED-USER', 'Keyed-User', 'ｋｅｙｅｄ-ｕｓｅｒ', 'keyed-USER']) {
        assertWrongPassword(await attempt(t, name, 'wrong-password', address));
      }
      assertRefused(await attempt(t, 'keyed-user', JOHN.password, address));
    });
  });
}

/** One limiter over one scratch database per test. */
async function withLimiter(url: string, options: Parameters<typeof createDatabaseLoginLimiter>[1], fn: (limiter: LoginLimiter, store: KyselyStore) => Promise<void>) {
  const database = await scratchDatabase(url);
  const store = await openStore(database.url);
  try {
    await store.migrate();
    await fn(createDatabaseLoginLimiter(store, options), store);
  } finally {
    await store.close();
    await database.drop();
  }
}


for (const database of databases) {
  describe(`database login limiter on ${database.name}`, { skip: database.skip }, () => {
    const key = usernameKey('johndoe');
    const T0 = 1_700_000_000_000;
    const options = { maxFailures: 3, windowSeconds: 60, addressMaxFailures: 10 };

    test('a failure counts while it is younger than the window, to the millisecond', () =>
      withLimiter(database.url, options, async (limiter) => {
        for (let i = 0; i < 3; i++) await limiter.recordFailure(key, A, T0 + i * 1000);
        assert.equal((await refusal(limiter.check(key, A, T0 + 2000))).retryAfterSeconds, 58);
        assert.equal((await refusal(limiter.check(key, A, T0 + 59_999))).retryAfterSeconds, 0.001);
        await limiter.check(key, A, T0 + 60_000);
        await limiter.check(key, B, T0 + 2000);
        await limiter.check(usernameKey('alice'), A, T0 + 2000);
      }));

    test('Retry-After waits for enough failures to leave when racing requests pushed the count past the limit', () =>
      withLimiter(database.url, options, async (limiter) => {
        for (let i = 0; i < 5; i++) await limiter.recordFailure(key, A, T0 + i * 1000);
        // Five failures, limit three: it takes the third newest (at 2 s) leaving to go below it.
        const error = await refusal(limiter.check(key, A, T0 + 10_000));
        assert.equal(error.retryAfterSeconds, 52);
        assert.equal(error.headers()['retry-after'], '52');
        await limiter.check(key, A, T0 + 62_000);
      }));

    test('concurrent failures are all counted', () =>
      withLimiter(database.url, { maxFailures: 20, windowSeconds: 60, addressMaxFailures: 1000 }, async (limiter) => {
        await Promise.all(Array.from({ length: 19 }, () => limiter.recordFailure(key, A, T0)));
        await limiter.check(key, A, T0);
        await limiter.recordFailure(key, A, T0);
        await refusal(limiter.check(key, A, T0));
      }));

    test('recordSuccess clears the pair and leaves the address count', () =>
      withLimiter(database.url, { maxFailures: 3, windowSeconds: 60, addressMaxFailures: 4 }, async (limiter) => {
        for (let i = 0; i < 3; i++) await limiter.recordFailure(key, A, T0);
        await refusal(limiter.check(key, A, T0));
        await limiter.recordSuccess(key, A, T0);
        await limiter.check(key, A, T0);
        await limiter.recordFailure(usernameKey('alice'), A, T0);
        await refusal(limiter.check(usernameKey('carol'), A, T0));
      }));

    test('prunes rows that left the window and keeps usernames out of the table', () =>
      withLimiter(database.url, options, async (limiter, store) => {
        const rows = () => store.database.db.selectFrom('login_failures').select(['key', 'at']).execute();
        await limiter.recordFailure(key, A, T0);
        await limiter.recordFailure(key, B, T0 + 30_000);
        assert.equal((await rows()).length, 4);
        for (const row of await rows()) assert.ok(!row.key.includes('johndoe') && !row.key.includes(A), row.key);
        // Two minutes on, both failures are out of the 60 s window and the next failure sweeps them.
        await limiter.recordFailure(usernameKey('alice'), A, T0 + 120_000);
        assert.deepEqual((await rows()).map((row) => Number(row.at)), [T0 + 120_000, T0 + 120_000]);
      }));

    test('takes any username and address text, NUL bytes and all, as data', () =>
      withLimiter(database.url, options, async (limiter) => {
        const nasty = usernameKey("x'); DROP TABLE login_failures;--\u0000\u{1F600}".repeat(50));
        for (let i = 0; i < 3; i++) await limiter.recordFailure(nasty, 'not\u0000an address', T0);
        await refusal(limiter.check(nasty, 'not\u0000an address', T0));
        await limiter.check(nasty, A, T0);
      }));

    test('a shed attempt counts toward the address only, never the pair', () =>
      withLimiter(database.url, { maxFailures: 3, windowSeconds: 60, addressMaxFailures: 4 }, async (limiter) => {
        for (let i = 0; i < 3; i++) await limiter.recordShed(A, T0 + i * 1000);
        await limiter.check(key, A, T0 + 3000);
        await limiter.recordShed(A, T0 + 3000);
        // Four shed attempts: the address is refused for every username, until the first leaves.
        assert.equal((await refusal(limiter.check(usernameKey('alice'), A, T0 + 3000))).retryAfterSeconds, 57);
        await limiter.check(key, B, T0 + 3000);
        // A success does not clear them (they are the address's, not the pair's).
        await limiter.recordSuccess(key, A, T0 + 3000);
        await refusal(limiter.check(key, A, T0 + 3000));
        await limiter.check(key, A, T0 + 60_000);
      }));

    test('successful logins count per address, in the window, up to their own limit', () =>
      withLimiter(database.url, { maxFailures: 3, windowSeconds: 60, addressMaxFailures: 10, addressMaxLogins: 3 }, async (limiter) => {
        for (let i = 0; i < 2; i++) await limiter.recordSuccess(usernameKey(`user-${i}`), A, T0 + i * 1000);
        await limiter.check(key, A, T0 + 2000);
        await limiter.recordSuccess(key, A, T0 + 2000);
        assert.equal((await refusal(limiter.check(key, A, T0 + 2000))).retryAfterSeconds, 58);
        await refusal(limiter.check(usernameKey('alice'), A, T0 + 2000));
        await limiter.check(key, B, T0 + 2000);
        await limiter.check(key, A, T0 + 60_000);
      }));

    test('every limiter on the same database sees the same counts', async () => {
      const folder = database.name === 'sqlite' ? tempDir() : undefined;
      const scratch = await scratchDatabase(folder ? `sqlite:${join(folder.path, 'shared.db')}` : database.url);
      const first = await openStore(scratch.url);
      const second = await openStore(scratch.url);
      try {
        await first.migrate();
        await second.migrate();
        const one = createDatabaseLoginLimiter(first, options);
        const two = createDatabaseLoginLimiter(second, options);
        for (let i = 0; i < 3; i++) await one.recordFailure(key, A, T0);
        await refusal(two.check(key, A, T0));
        await two.recordSuccess(key, A, T0);
        await one.check(key, A, T0);
      } finally {
        await first.close();
        await second.close();
        await scratch.drop();
        folder?.remove();
      }
    });
  });
}

test('the runtime limits logins with PORTCULLIS_LOGIN_MAX_FAILURES, _LOGIN_WINDOW, _ADDRESS_MAX_FAILURES and _ADDRESS_MAX_LOGINS', async () => {
  const folder = tempDir();
  const clock = createManualClock(T_RUNTIME);
  const env = {
    DATABASE_URL: `sqlite:${join(folder.path, 'runtime.db')}`,
    PORTCULLIS_SECRET_KEY: TEST_SECRET,
    PORTCULLIS_LOGIN_MAX_FAILURES: '2',
    PORTCULLIS_LOGIN_WINDOW: '30',
    PORTCULLIS_ADDRESS_MAX_FAILURES: '3',
    PORTCULLIS_ADDRESS_MAX_LOGINS: '2',
    PORTCULLIS_ARGON2_MEMORY: '1024',
    PORTCULLIS_ARGON2_TIME: '1',
    PORTCULLIS_ARGON2_PARALLELISM: '1',
  };
  const runtime = await openRuntime(loadConfig({ env }), { clock });
  try {
    await runtime.service.createUser({ username: 'johndoe', password: JOHN.password });
    const grant = (password: string, address: string, username = 'johndoe') =>
      runtime.service.passwordGrant({ username, password, scope: undefined, client: { address, userAgent: null, clientId: null } });
    for (let i = 0; i < 2; i++) await assert.rejects(grant('wrong-password', A), { code: 'PCL_INVALID_GRANT' });
    const refused = await refusal(grant(JOHN.password, A));
    assert.equal(refused.retryAfterSeconds, 30);
    await grant(JOHN.password, B);
    await assert.rejects(grant('wrong-password', A, 'someone-else'), { code: 'PCL_INVALID_GRANT' });
    await refusal(grant('whatever-password', A, 'a-third-name'));
    clock.advance(30_000);
    await grant(JOHN.password, A);
    // Two successes from one address in the window are its last (B's first has left it).
    await grant(JOHN.password, B);
    await grant(JOHN.password, B);
    await refusal(grant(JOHN.password, B));
  } finally {
    await runtime.close();
    folder.remove();
  }
});

describe('limiter addresses and options', () => {
  test('groups IPv6 addresses by /64 and unwraps IPv4-mapped ones', () => {
    assert.equal(limiterAddress('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(limiterAddress('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64');
    assert.equal(limiterAddress('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(limiterAddress('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(limiterAddress('::1'), '0:0:0:0::/64');
    assert.equal(limiterAddress('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(limiterAddress('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.equal(limiterAddress('192.0.2.1'), '192.0.2.1');
    assert.equal(limiterAddress('unix-socket'), 'unix-socket');
  });

  test('keys a pair apart from an address and from other pairs whatever characters they hold', () => {
    assert.notEqual(pairFailureKey('a', 'b:c'), pairFailureKey('a:b', 'c'));
    assert.equal(pairFailureKey('a', '::ffff:192.0.2.1'), pairFailureKey('a', '192.0.2.1'));
    assert.notEqual(addressFailureKey(A), pairFailureKey('', A));
  });

  test('refuses limits that are not whole numbers of at least 1 when it is built', async () => {
    const store = await openStore('sqlite::memory:');
    try {
      for (const bad of [{ maxFailures: 0 }, { windowSeconds: 1.5 }, { addressMaxFailures: -1 }, { maxFailures: Number.NaN }, { addressMaxLogins: 0 }]) {
        assert.throws(() => createDatabaseLoginLimiter(store, bad), ConfigError, JSON.stringify(bad));
      }
    } finally {
      await store.close();
    }
  });
});
