/**
 * The login limiter's policy (SPEC §4) over the in-memory counter, apart from any storage: which
 * keys are counted when, what `check` refuses and for how long, and the counter protocol's
 * contract as the memory counter keeps it. The same policy runs over the database and Redis
 * counters in test/login-limiter.test.ts and test/redis-login-limiter.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, TooManyAttemptsError } from './errors.ts';
import {
  addressFailureKey,
  addressLoginKey,
  createLoginLimiter,
  createMemoryLoginCounter,
  pairFailureKey,
  SWEEP_INTERVAL_MS,
  type LoginCounter,
} from './login-limiter.ts';
import { usernameKey } from './username.ts';

const A = '203.0.113.1';
const B = '198.51.100.7';
const T0 = 1_700_000_000_000;
const WINDOW = 60_000;
const john = usernameKey('johndoe');
const alice = usernameKey('alice');

async function refused(promise: Promise<void>): Promise<TooManyAttemptsError> {
  const error = await promise.then(
    () => assert.fail('expected a 429'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof TooManyAttemptsError, String(error));
  return error;
}

/** The memory counter, with a log of the protocol calls the policy makes. */
function loggedCounter(): { counter: LoginCounter; calls: string[] } {
  const inner = createMemoryLoginCounter();
  const calls: string[] = [];
  const counter: LoginCounter = {
    add: (keys, now, since) => (calls.push(`add ${keys.join(',')} ${now - since}`), inner.add(keys, now, since)),
    nthNewest: (queries, since) => (calls.push(`nthNewest ${queries.map(([key, n]) => `${key}#${n}`).join(',')}`), inner.nthNewest(queries, since)),
    clear: (keys) => (calls.push(`clear ${keys.join(',')}`), inner.clear(keys)),
  };
  return { counter, calls };
}

describe('login limiter policy', () => {
  const limits = { maxFailures: 3, addressMaxFailures: 5, addressMaxLogins: 4, windowSeconds: WINDOW / 1000 };

  test('a check is one question to the counter, about the pair, the address failures and the address logins', async () => {
    const { counter, calls } = loggedCounter();
    await createLoginLimiter(counter, limits).check(john, A, T0);
    assert.deepEqual(calls, [`nthNewest ${pairFailureKey(john, A)}#3,${addressFailureKey(A)}#5,${addressLoginKey(A)}#4`]);
  });

  test('a failure counts for the pair and the address, a shed attempt for the address only, a success clears the pair and counts a login', async () => {
    const { counter, calls } = loggedCounter();
    const limiter = createLoginLimiter(counter, limits);
    await limiter.recordFailure(john, A, T0);
    await limiter.recordShed(A, T0);
    await limiter.recordSuccess(john, A, T0);
    assert.deepEqual(calls, [
      `add ${pairFailureKey(john, A)},${addressFailureKey(A)} ${WINDOW}`,
      `add ${addressFailureKey(A)} ${WINDOW}`,
      `clear ${pairFailureKey(john, A)}`,
      `add ${addressLoginKey(A)} ${WINDOW}`,
    ]);
  });

  test('refuses a pair at its max-th failure until that many have left the window, to the millisecond', async () => {
    const limiter = createLoginLimiter(createMemoryLoginCounter(), limits);
    for (let i = 0; i < 2; i++) await limiter.recordFailure(john, A, T0 + i * 1000);
    await limiter.check(john, A, T0 + 2000);
    await limiter.recordFailure(john, A, T0 + 2000);
    assert.equal((await refused(limiter.check(john, A, T0 + 2000))).retryAfterSeconds, 58);
    assert.equal((await refused(limiter.check(john, A, T0 + 59_999))).retryAfterSeconds, 0.001);
    await limiter.check(john, A, T0 + 60_000);
    // The pair only: the same user elsewhere, and another user here, are let through.
    await limiter.check(john, B, T0 + 2000);
    await limiter.check(alice, A, T0 + 2000);
  });

  test('when racing requests pushed a count past its maximum, Retry-After waits for the max-th newest to leave', async () => {
    const limiter = createLoginLimiter(createMemoryLoginCounter(), limits);
    for (let i = 0; i < 5; i++) await limiter.recordFailure(john, A, T0 + i * 1000);
    // Five failures, limit three: the third newest is at 2 s, so 52 s at 10 s (not 50, the oldest's).
    assert.equal((await refused(limiter.check(john, A, T0 + 10_000))).retryAfterSeconds, 52);
  });

  test('refuses every username from an address at its failure limit, shed attempts included, and a success does not clear it', async () => {
    const limiter = createLoginLimiter(createMemoryLoginCounter(), limits);
    for (let i = 0; i < 3; i++) await limiter.recordShed(A, T0);
    await limiter.recordFailure(alice, A, T0);
    await limiter.check(john, A, T0);
    await limiter.recordFailure(usernameKey('carol'), A, T0);
    await refused(limiter.check(usernameKey('never-seen'), A, T0));
    await limiter.recordSuccess(john, A, T0);
    await refused(limiter.check(john, A, T0));
    await limiter.check(john, B, T0);
  });

  test('a success clears the pair only', async () => {
    const limiter = createLoginLimiter(createMemoryLoginCounter(), { ...limits, addressMaxFailures: 4 });
    for (let i = 0; i < 3; i++) await limiter.recordFailure(john, A, T0);
    await refused(limiter.check(john, A, T0));
    await limiter.recordSuccess(john, A, T0);
    await limiter.check(john, A, T0);
    // The address kept its three failures: one more reaches its limit of four.
    await limiter.recordFailure(alice, A, T0);
    await refused(limiter.check(usernameKey('carol'), A, T0));
  });

  test('bounds successful logins per address', async () => {
    const limiter = createLoginLimiter(createMemoryLoginCounter(), limits);
    for (let i = 0; i < 4; i++) await limiter.recordSuccess(usernameKey(`user-${i}`), A, T0 + i * 1000);
    assert.equal((await refused(limiter.check(john, A, T0 + 4000))).retryAfterSeconds, 56);
    await limiter.check(john, B, T0 + 4000);
    await limiter.check(john, A, T0 + 60_000);
  });

  test('counts IPv6 clients per /64 and IPv4-mapped IPv6 as IPv4', async () => {
    const limiter = createLoginLimiter(createMemoryLoginCounter(), limits);
    for (let i = 1; i <= 3; i++) await limiter.recordFailure(john, `2001:db8:1:2::${i}`, T0);
    await refused(limiter.check(john, '2001:db8:1:2:ffff::1', T0));
    await limiter.check(john, '2001:db8:1:3::1', T0);
    for (let i = 0; i < 3; i++) await limiter.recordFailure(john, '192.0.2.9', T0);
    await refused(limiter.check(john, '::ffff:192.0.2.9', T0));
  });

  test('refuses limits that are not whole numbers of at least 1 when it is built, naming them', () => {
    for (const [name, bad] of [['maxFailures', 0], ['windowSeconds', 1.5], ['addressMaxFailures', -1], ['addressMaxLogins', Number.NaN]] as const) {
      assert.throws(() => createLoginLimiter(createMemoryLoginCounter(), { [name]: bad }), (e: unknown) => e instanceof ConfigError && e.option === name, name);
    }
  });

  test("passes the counter's ping through for /readyz, and has none when the counter has none", async () => {
    let pinged = 0;
    const counter = { ...createMemoryLoginCounter(), ping: async () => void pinged++ };
    await createLoginLimiter(counter).ping?.();
    assert.equal(pinged, 1);
    assert.equal(createLoginLimiter(createMemoryLoginCounter()).ping, undefined);
  });
});

describe('memory login counter', () => {
  test('answers the n-th newest event after `since`, or undefined when fewer are left', async () => {
    const counter = createMemoryLoginCounter();
    for (const at of [T0, T0 + 3000, T0 + 1000, T0 + 2000]) await counter.add(['k'], at, at - WINDOW);
    assert.deepEqual(await counter.nthNewest([['k', 1], ['k', 2], ['k', 4], ['k', 5], ['other', 1]], T0 - 1), [T0 + 3000, T0 + 2000, T0, undefined, undefined]);
    // Events at or before `since` do not count.
    assert.deepEqual(await counter.nthNewest([['k', 3], ['k', 4]], T0), [T0 + 1000, undefined]);
  });

  test('clear forgets a key, and keys left by the window are swept', async () => {
    const counter = createMemoryLoginCounter();
    await counter.add(['a', 'b'], T0, T0 - WINDOW);
    await counter.clear(['a']);
    assert.deepEqual(await counter.nthNewest([['a', 1], ['b', 1]], T0 - WINDOW), [undefined, T0]);
    // Past the window and the sweep interval, adding under another key sweeps `b` away: asked
    // about an old `since`, it has nothing left.
    const later = T0 + WINDOW + SWEEP_INTERVAL_MS;
    await counter.add(['c'], later, later - WINDOW);
    assert.deepEqual(await counter.nthNewest([['b', 1], ['c', 1]], T0 - WINDOW), [undefined, later]);
  });
});
