/**
 * Hashing is a shared, scarce resource (SPEC §3, §4): a login flood from one client address —
 * unknown usernames or the right password alike — is held to that address's fair share of the
 * hashing slots, so logins from other addresses are still served; the flood's shed attempts
 * (503) count toward its address's limit, so it reaches 429. Run with the database limiter on
 * SQLite and PostgreSQL, and with the Redis limiter. Hashing uses the production argon2
 * parameters so that a verification is slow enough for a flood to pile up behind it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { DEFAULT_ARGON2, type AuthServiceOptions } from '../src/core/auth-service.ts';
import { addressFailureKey } from '../src/core/login-limiter.ts';
import { createRedisLoginLimiter } from '../src/store/redis-login-limiter.ts';
import { createTestContext, JOHN, type TestContext } from './helpers.ts';
import { testDatabases } from './pg.ts';
import { redisServerOrSkip, testRedis } from './redis.ts';

/** Address-wide failures before 429; the floods below send twice as many attempts. */
const ADDRESS_MAX = 20;
const LIMITS = { maxFailures: 5, windowSeconds: 900, addressMaxFailures: ADDRESS_MAX, addressMaxLogins: 1000 };
/** One hashing slot and a short queue, as on a small machine; each address may hold two places. */
const HASHING: Partial<AuthServiceOptions> = { argon2: DEFAULT_ARGON2, hashConcurrency: 1, hashQueue: 4, hashPerAddress: 2 };
const FLOOD_SIZE = 2 * ADDRESS_MAX;

const databases = await testDatabases();
const redisServer = await redisServerOrSkip();

interface Variant {
  name: string;
  skip: string | false;
  open(): Promise<{ t: TestContext; addressFailures(address: string): Promise<number>; close(): Promise<void> }>;
}

const variants: Variant[] = [
  ...databases.map(
    (database): Variant => ({
      name: database.name,
      skip: database.skip,
      async open() {
        const t = await createTestContext({ databaseUrl: database.url, databaseLimiter: LIMITS, ...HASHING });
        const addressFailures = async (address: string) =>
          (await t.store.database.db.selectFrom('login_failures').select('at').where('key', '=', addressFailureKey(address)).execute()).length;
        return { t, addressFailures, close: () => t.close() };
      },
    }),
  ),
  {
    name: 'redis',
    skip: redisServer.skip,
    async open() {
      const redis = testRedis(redisServer.url as string);
      const t = await createTestContext({ limiter: createRedisLoginLimiter(redis.redis, { ...LIMITS, keyPrefix: redis.keyPrefix }), ...HASHING });
      return {
        t,
        addressFailures: (address) => redis.redis.zcard(redis.keyPrefix + addressFailureKey(address)),
        async close() {
          await t.close();
          await redis.close();
        },
      };
    },
  },
];

function attempt(t: TestContext, username: string, password: string, address: string): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress: address,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString(),
  });
}

/** Resolves once `predicate` holds, polling; fails after `ms`. */
async function until(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

for (const variant of variants) {
  describe(`a login flood from one address on ${variant.name}`, { skip: variant.skip }, () => {
    let v: Awaited<ReturnType<Variant['open']>>;
    before(async () => {
      v = await variant.open();
      await v.t.service.createUser(JOHN);
      await v.t.service.warm();
    });
    after(() => v.close());

    /**
     * Floods from `flooder` (FLOOD_SIZE concurrent attempts), logs in from `bystander` once the
     * flood has been shed at the hasher, and returns both outcomes.
     */
    const floodWhileAnotherLogsIn = async (flooder: string, bystander: string, credentials: (i: number) => [string, string]) => {
      const shed = (): number => v.t.service.hashingStats().shed;
      const shedBefore = shed();
      const flood = Promise.all(Array.from({ length: FLOOD_SIZE }, (_, i) => attempt(v.t, ...credentials(i), flooder)));
      // The flood has reached the hasher and been shed down to its share, and still holds it.
      await until(() => shed() - shedBefore >= ADDRESS_MAX, 30_000, 'the flood was shed');
      const served = await attempt(v.t, JOHN.username, JOHN.password, bystander);
      return { served, flood: await flood };
    };

    const assertShed = (responses: LightMyRequestResponse[]) => {
      const shed = responses.filter((r) => r.statusCode === 503);
      assert.ok(shed.length >= ADDRESS_MAX, `503s: ${shed.length}`);
      for (const response of shed) {
        assert.equal(response.headers['retry-after'], '1');
        assert.equal(response.json().error, 'temporarily_unavailable');
      }
      return shed.length;
    };

    test('a flood of unknown usernames leaves another address served, and its shed attempts count until the address gets 429', async () => {
      const flooder = '192.0.2.10';
      const { served, flood } = await floodWhileAnotherLogsIn(flooder, '198.51.100.10', (i) => [`nobody-${i}`, 'no-such-password']);
      assert.equal(served.statusCode, 200, served.body);
      for (const response of flood) assert.ok([400, 429, 503].includes(response.statusCode), `${response.statusCode} ${response.body}`);
      const shed = assertShed(flood);
      const failed = flood.filter((r) => r.statusCode === 400).length;
      // SPEC §4: shed attempts count toward the address's limit, as its failures do.
      assert.equal(await v.addressFailures(flooder), shed + failed);
      const next = await attempt(v.t, JOHN.username, JOHN.password, flooder);
      assert.equal(next.statusCode, 429, next.body);
      assert.equal((await attempt(v.t, JOHN.username, JOHN.password, '198.51.100.11')).statusCode, 200);
    });

    test('a flood of right passwords is held to its share too, leaves another address served, and reaches 429', async () => {
      const flooder = '192.0.2.20';
      const { served, flood } = await floodWhileAnotherLogsIn(flooder, '198.51.100.20', () => [JOHN.username, JOHN.password]);
      assert.equal(served.statusCode, 200, served.body);
      for (const response of flood) assert.ok([200, 429, 503].includes(response.statusCode), `${response.statusCode} ${response.body}`);
      const shed = assertShed(flood);
      // Only the attempts inside the address's share were hashed (and succeeded).
      assert.ok(flood.filter((r) => r.statusCode === 200).length <= FLOOD_SIZE - shed);
      assert.equal(await v.addressFailures(flooder), shed);
      const next = await attempt(v.t, JOHN.username, JOHN.password, flooder);
      assert.equal(next.statusCode, 429, next.body);
    });
  });
}
