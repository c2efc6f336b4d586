/**
 * The ended-state's bounds, with an explicit clock: entries leave once every token they could
 * refuse has expired, a subject's line only moves forward, and what the cap evicts leaves a
 * watermark that refuses older tokens until the evicted entries would have expired.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEndedState } from './ended-state.ts';

const HOUR = 3_600_000;
const T0 = 1_767_225_600_000; // ms
const seconds = (ms: number): number => Math.floor(ms / 1000);

test('an entry is dropped once the longest token lifetime has passed since its event', () => {
  const ended = createEndedState({ maxEntries: 100, retentionMs: HOUR });
  ended.endSession('s1', seconds(T0), T0);
  ended.endSubject('u1', seconds(T0), 'account-purged', T0);
  ended.revokeKey('k1', seconds(T0), T0);
  const token = { sid: 's1', sub: 'u1', iat: seconds(T0) - 60 };
  assert.equal(ended.refusal(token, 'k1', T0), 'key-revoked');
  ended.prune(T0 + HOUR - 1);
  assert.deepEqual(ended.counts(), { endedSessions: 1, endedSubjects: 1, revokedKeys: 1, evicted: 0 });
  ended.prune(T0 + HOUR);
  assert.deepEqual(ended.counts(), { endedSessions: 0, endedSubjects: 0, revokedKeys: 0, evicted: 0 });
  assert.equal(ended.refusal(token, 'k1', T0 + HOUR), undefined);
});

test("a subject's tokens are refused up to the latest event; an older event changes nothing", () => {
  const ended = createEndedState({ maxEntries: 100, retentionMs: HOUR });
  ended.endSubject('u', seconds(T0), 'credentials-changed', T0);
  ended.endSubject('u', seconds(T0) - 100, 'inactive', T0);
  assert.equal(ended.refusal({ sub: 'u', iat: seconds(T0) }, undefined, T0), 'credentials-changed', 'at the event second: refused');
  assert.equal(ended.refusal({ sub: 'u', iat: seconds(T0) + 1 }, undefined, T0), undefined, 'after the event: passes');
  ended.endSubject('u', seconds(T0) + 10, 'inactive', T0);
  assert.equal(ended.refusal({ sub: 'u', iat: seconds(T0) + 1 }, undefined, T0), 'inactive');
});

test('past the cap the oldest entry is evicted and tokens issued before it are suspect until it would have expired', () => {
  const ended = createEndedState({ maxEntries: 2, retentionMs: HOUR });
  ended.endSession('s1', seconds(T0), T0);
  ended.endSession('s2', seconds(T0) + 1, T0 + 1000);
  ended.revokeKey('k', seconds(T0) + 2, T0 + 2000);
  assert.deepEqual(ended.counts(), { endedSessions: 1, endedSubjects: 0, revokedKeys: 1, evicted: 1 });
  assert.equal(ended.refusal({ sid: 's1', sub: 'u', iat: seconds(T0) - 5 }, undefined, T0 + 3000), 'suspect');
  assert.equal(ended.refusal({ sid: 'other', sub: 'u', iat: seconds(T0) + 1 }, undefined, T0 + 3000), undefined, 'issued after the evicted event');
  assert.equal(ended.refusal({ sid: 's1', sub: 'u', iat: seconds(T0) - 5 }, undefined, T0 + HOUR), undefined, 'the evicted entry would have expired');
});
