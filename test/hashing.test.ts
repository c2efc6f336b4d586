/**
 * Password hashing under load and the timing rule (SPEC §3): every failure branch does the
 * same hashing work, hashing stays off the event loop, and past the in-flight bound logins are
 * shed with 503 instead of queueing without end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_ARGON2 } from '../src/core/auth-service.ts';
import { ALICE, createTestContext, getWithToken, JOHN, login, type TestContext } from './helpers.ts';

/** Logs in from a client address of its own (each has its own fair share of the hashing slots). */
async function loginFrom(t: TestContext, address: string, username: string, password: string) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress: address,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString(),
  });
  return { response, body: response.json() as Record<string, unknown> };
}

describe('the same hashing work on every failure branch', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext();
    await t.service.createUser(JOHN);
    await t.service.createUser(ALICE);
  });
  after(() => t.close());

  const verificationsFor = async (username: string, password: string) => {
    const before = t.service.hashingStats().verifications;
    const { response } = await login(t.app, username, password);
    return { status: response.statusCode, verifications: t.service.hashingStats().verifications - before };
  };

  test('an unknown user, a wrong password and a disabled user each cost exactly one verification', async () => {
    const unknown = await verificationsFor('nosuchuser', 'whatever-password');
    const wrong = await verificationsFor(JOHN.username, 'wrong-password');
    const disabled = await verificationsFor(ALICE.username, ALICE.password);
    const ok = await verificationsFor(JOHN.username, JOHN.password);
    assert.deepEqual([unknown, wrong, disabled, ok], [
      { status: 400, verifications: 1 },
      { status: 400, verifications: 1 },
      { status: 400, verifications: 1 },
      { status: 200, verifications: 1 },
    ]);
  });

  test('a username that could never exist (too long, spaces) still costs one verification', async () => {
    assert.deepEqual(await verificationsFor('x'.repeat(500), 'whatever-password'), { status: 400, verifications: 1 });
    assert.deepEqual(await verificationsFor('john doe', 'whatever-password'), { status: 400, verifications: 1 });
  });
});

describe('hashing under a login flood', () => {
  let t: TestContext;
  let token: string;
  before(async () => {
    // Production parameters (~100 ms of CPU a verify here), so a login is slow enough to race.
    t = await createTestContext({ argon2: DEFAULT_ARGON2, hashConcurrency: 2, hashQueue: 4 });
    await t.service.createUser(JOHN);
    token = String((await login(t.app, JOHN.username, JOHN.password)).body.access_token);
  });
  after(() => t.close());

  test('GET /users/me completes before the first of several in-flight logins does', async () => {
    const order: string[] = [];
    const logins = Array.from({ length: 6 }, (_, i) =>
      loginFrom(t, `198.51.100.${i + 1}`, JOHN.username, i % 2 ? JOHN.password : 'wrong-password').then(({ response }) => {
        order.push(`login:${response.statusCode}`);
      }),
    );
    // Let the logins reach the hasher (bounded wait), then ask for a protected route.
    for (let i = 0; i < 1000 && t.service.hashingStats().active === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(t.service.hashingStats().active > 0, 'logins are hashing');
    const me = await getWithToken(t.app, '/users/me', token);
    order.push(`me:${me.statusCode}`);
    await Promise.all(logins);
    assert.equal(order[0], 'me:200', `completion order: ${order.join(', ')}`);
    assert.equal(order.length, 7);
  });

  test('sheds logins past the bound with 503 and Retry-After, and serves the rest', async () => {
    const { concurrency, queue } = { concurrency: 2, queue: 4 };
    const shedBefore = t.service.hashingStats().shed;
    // From as many addresses, so that only the global bound applies (one address would be held to its fair share first).
    const responses = await Promise.all(Array.from({ length: concurrency + queue + 3 }, (_, i) => loginFrom(t, `192.0.2.${i + 1}`, JOHN.username, JOHN.password)));
    const statuses = responses.map((r) => r.response.statusCode);
    assert.equal(statuses.filter((s) => s === 200).length, concurrency + queue, statuses.join(','));
    const shed = responses.filter((r) => r.response.statusCode === 503);
    assert.equal(shed.length, 3);
    for (const { response, body } of shed) {
      assert.equal(response.headers['retry-after'], '1');
      assert.equal(body.error, 'temporarily_unavailable');
    }
    assert.equal(t.service.hashingStats().shed - shedBefore, 3);
    assert.equal(t.service.hashingStats().active, 0, 'every slot was released');
  });
});
