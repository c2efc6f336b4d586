import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginOverloadedError } from './errors.ts';
import { createWorkLimiter } from './work-limiter.ts';

test('runs at most `concurrency` jobs, queues up to `queue`, and refuses the rest at once', async () => {
  const limiter = createWorkLimiter({ concurrency: 2, queue: 1 });
  const gates: Array<() => void> = [];
  let running = 0;
  let peak = 0;
  const job = () =>
    limiter.run(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
    });
  const accepted = [job(), job(), job()];
  await assert.rejects(job(), LoginOverloadedError);
  assert.deepEqual(limiter.stats, { active: 2, waiting: 1, shed: 1 });
  for (let i = 0; i < 3; i++) {
    while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
    gates.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(accepted);
  assert.equal(peak, 2);
  assert.deepEqual(limiter.stats, { active: 0, waiting: 0, shed: 1 });
});

test('a failing job releases its slot', async () => {
  const limiter = createWorkLimiter({ concurrency: 1, queue: 0 });
  await assert.rejects(limiter.run(async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await limiter.run(async () => 42), 42);
});
