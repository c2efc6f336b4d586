/**
 * Sessions' use is written in batches (session-touches.ts): many uses, few writes, none lost,
 * one write at a time, each batch bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSessionTouches, type SessionUse } from './session-touches.ts';

/** A writer that records each batch it is given, and can be held or made to fail. */
function recorder() {
  const batches: SessionUse[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let failNext = false;
  const write = async (uses: readonly SessionUse[]): Promise<void> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
    if (failNext) {
      failNext = false;
      throw new Error('database down');
    }
    batches.push([...uses]);
  };
  return { write, batches, maxInFlight: () => maxInFlight, failOnce: () => (failNext = true) };
}

test('1,200 uses of distinct sessions arrive as 3 writes of at most 500, each use once with its time', async () => {
  const r = recorder();
  const touches = createSessionTouches(r.write, { delayMs: 50, maxBatch: 500 });
  await Promise.all(Array.from({ length: 1200 }, (_, i) => touches.touch(`s${i}`, 1000 + i)));
  assert.ok(r.batches.length <= 3, `${r.batches.length} writes`);
  assert.ok(r.batches.every((b) => b.length <= 500));
  const written = new Map(r.batches.flat());
  assert.equal(written.size, 1200);
  assert.equal(written.get('s7'), 1007);
  assert.equal(r.maxInFlight(), 1, 'one write at a time');
});

test('a session used twice while waiting is written once, with the later time', async () => {
  const r = recorder();
  const touches = createSessionTouches(r.write, { delayMs: 20 });
  await Promise.all([touches.touch('a', 2000), touches.touch('a', 1000), touches.touch('b', 5)]);
  assert.deepEqual(r.batches, [[['a', 2000], ['b', 5]]]);
});

test('uses wait at most delayMs for others, then go out together', async () => {
  const r = recorder();
  const touches = createSessionTouches(r.write, { delayMs: 30 });
  const first = touches.touch('a', 1);
  await new Promise((resolve) => setTimeout(resolve, 10));
  const second = touches.touch('b', 2);
  assert.equal(r.batches.length, 0, 'nothing written before the delay');
  await Promise.all([first, second]);
  assert.deepEqual(r.batches, [[['a', 1], ['b', 2]]]);
});

test('uses that arrive during a write go out in the next one', async () => {
  const r = recorder();
  const touches = createSessionTouches(r.write, { delayMs: 1 });
  const first = touches.touch('a', 1);
  await new Promise((resolve) => setTimeout(resolve, 3)); // the first write is under way
  const second = touches.touch('b', 2);
  await Promise.all([first, second]);
  assert.deepEqual(r.batches, [[['a', 1]], [['b', 2]]]);
  assert.equal(r.maxInFlight(), 1);
});

test('a failed write rejects its uses only; later uses are written', async () => {
  const r = recorder();
  const touches = createSessionTouches(r.write, { delayMs: 1 });
  r.failOnce();
  await assert.rejects(touches.touch('a', 1), /database down/);
  await touches.touch('b', 2);
  assert.deepEqual(r.batches, [[['b', 2]]]);
});

test('close() writes what waits at once; a use after close is written without waiting', async () => {
  const r = recorder();
  const touches = createSessionTouches(r.write, { delayMs: 60_000 });
  void touches.touch('a', 1);
  await touches.close();
  assert.deepEqual(r.batches, [[['a', 1]]]);
  await touches.touch('b', 2);
  assert.deepEqual(r.batches, [[['a', 1]], [['b', 2]]]);
});
