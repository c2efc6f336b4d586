import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuthStateCache } from './auth-state-cache.ts';
import type { AuthState } from './store.ts';

/** A minimal state of session `sid` owned by `userId`: only the ids matter to the cache. */
function state(sid: string, userId = `user-of-${sid}`): AuthState {
  return {
    session: { id: sid, userId, scopes: ['me'], createdAt: 0, lastUsedAt: 0, expiresAt: 1, revokedAt: null, clientAddress: null, userAgent: null, clientId: null, audience: null },
    user: { id: userId, username: userId, email: null, fullName: null, disabled: false, passwordHash: 'x', scopes: ['me'], createdAt: 0, updatedAt: 0, emailVerifiedAt: null },
  };
}

test('never holds more sessions than its bound, and keeps the most recently added ones', () => {
  const cache = createAuthStateCache(100);
  for (let i = 0; i < 1_000; i++) {
    cache.set(`s${i}`, state(`s${i}`));
    assert.ok(cache.size <= 100, `size ${cache.size} after ${i + 1} inserts`);
  }
  assert.equal(cache.size, 100);
  assert.deepEqual(cache.sessionIds(), Array.from({ length: 100 }, (_, i) => `s${900 + i}`));
  assert.equal(cache.get('s899'), undefined);
  assert.equal(cache.get('s900')?.session.id, 's900');
});

test('evicts the least recently used session: a read makes a session the most recently used', () => {
  const cache = createAuthStateCache(3);
  for (const sid of ['a', 'b', 'c']) cache.set(sid, state(sid));
  assert.deepEqual(cache.sessionIds(), ['a', 'b', 'c']);
  assert.ok(cache.get('a'));
  assert.deepEqual(cache.sessionIds(), ['b', 'c', 'a']);
  cache.set('d', state('d'));
  assert.deepEqual(cache.sessionIds(), ['c', 'a', 'd'], 'b, the least recently used, went');
  assert.equal(cache.get('b'), undefined);
  assert.ok(cache.get('c'));
  cache.set('e', state('e'));
  assert.deepEqual(cache.sessionIds(), ['d', 'c', 'e'], 'a went: c was read after it');
});

test('a miss changes nothing, and replacing a cached session neither grows the cache nor evicts', () => {
  const cache = createAuthStateCache(2);
  cache.set('a', state('a'));
  cache.set('b', state('b'));
  assert.equal(cache.get('zzz'), undefined);
  assert.deepEqual(cache.sessionIds(), ['a', 'b']);
  const fresher = state('a');
  fresher.session.lastUsedAt = 42;
  cache.set('a', fresher);
  assert.equal(cache.size, 2);
  assert.deepEqual(cache.sessionIds(), ['b', 'a']);
  assert.equal(cache.get('a')?.session.lastUsedAt, 42);
});

test('deleteUser drops every cached session of that user and no other, also after evictions reused their slots', () => {
  const cache = createAuthStateCache(4);
  cache.set('j1', state('j1', 'jane'));
  cache.set('j2', state('j2', 'jane'));
  cache.set('m1', state('m1', 'mallory'));
  cache.set('j3', state('j3', 'jane'));
  // j1 is evicted by m2: the user index must forget it, and m2 takes its slot.
  cache.set('m2', state('m2', 'mallory'));
  assert.deepEqual(cache.sessionIds(), ['j2', 'm1', 'j3', 'm2']);
  cache.deleteUser('jane');
  assert.deepEqual(cache.sessionIds(), ['m1', 'm2']);
  assert.equal(cache.size, 2);
  cache.deleteUser('jane'); // nothing left of her: a no-op
  cache.deleteUser('nobody');
  assert.deepEqual(cache.sessionIds(), ['m1', 'm2']);
  cache.deleteSession('m1');
  cache.deleteUser('mallory');
  assert.equal(cache.size, 0);
  assert.deepEqual(cache.sessionIds(), []);
  // Emptied by deletes, it fills again up to its bound.
  for (const sid of ['x', 'y', 'z', 'w', 'v']) cache.set(sid, state(sid, 'zed'));
  assert.deepEqual(cache.sessionIds(), ['y', 'z', 'w', 'v']);
  cache.deleteUser('zed');
  assert.equal(cache.size, 0);
});

test('deleteSession and clear drop entries; the cache keeps working afterwards', () => {
  const cache = createAuthStateCache(3);
  for (const sid of ['a', 'b', 'c']) cache.set(sid, state(sid));
  cache.deleteSession('b');
  cache.deleteSession('not-cached');
  assert.deepEqual(cache.sessionIds(), ['a', 'c']);
  cache.set('d', state('d'));
  assert.deepEqual(cache.sessionIds(), ['a', 'c', 'd'], 'a freed slot is used before anything is evicted');
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get('a'), undefined);
  for (const sid of ['e', 'f', 'g', 'h']) cache.set(sid, state(sid));
  assert.deepEqual(cache.sessionIds(), ['f', 'g', 'h']);
  cache.deleteUser('user-of-g');
  assert.deepEqual(cache.sessionIds(), ['f', 'h']);
});

test('with twice as many sessions in use as it holds, about half the reads still hit', () => {
  // Independent clients: each read picks one of 2 × size sessions at random (a fixed-seed
  // generator, so the count is the same on every run); a miss caches the session, as a read
  // from the store does.
  const size = 200;
  const cache = createAuthStateCache(size);
  let seed = 12345;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  let hits = 0;
  const reads = 40_000;
  for (let i = 0; i < reads; i++) {
    const sid = `s${random(2 * size)}`;
    if (cache.get(sid)) hits++;
    else cache.set(sid, state(sid));
  }
  const rate = hits / reads;
  assert.ok(rate > 0.45 && rate < 0.55, `hit rate ${rate}`);
  assert.equal(cache.size, size);
});

test('refuses a bound that is not a whole number of at least 1', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => createAuthStateCache(bad), TypeError);
});
