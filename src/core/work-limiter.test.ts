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
  assert.deepEqual(limiter.stats, { active: 2, waiting: 1, shed: 1, keys: 0 });
  for (let i = 0; i < 3; i++) {
    while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
    gates.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(accepted);
  assert.equal(peak, 2);
  assert.deepEqual(limiter.stats, { active: 0, waiting: 0, shed: 1, keys: 0 });
});

test('a failing job releases its slot', async () => {
  const limiter = createWorkLimiter({ concurrency: 1, queue: 0 });
  await assert.rejects(limiter.run(async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await limiter.run(async () => 42), 42);
});

/** A job that runs until its gate is opened. */
function gated(): { job: () => Promise<void>; open: () => void; started: Promise<void> } {
  let open!: () => void;
  let start!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const started = new Promise<void>((resolve) => (start = resolve));
  return {
    job: async () => {
      start();
      await gate;
    },
    open,
    started,
  };
}

test('one key holds at most `perKey` places, running and waiting together; past that it is refused without touching the queue', async () => {
  const limiter = createWorkLimiter({ concurrency: 1, queue: 4, perKey: 2 });
  const flood = [gated(), gated()];
  const held = flood.map((g) => limiter.run(g.job, 'flooder'));
  for (let i = 0; i < 5; i++) await assert.rejects(limiter.run(async () => {}, 'flooder'), LoginOverloadedError);
  assert.deepEqual(limiter.stats, { active: 1, waiting: 1, shed: 5, keys: 1 });
  // Another key still finds room in the shared queue, and is served in turn.
  const other = gated();
  const served = limiter.run(other.job, 'someone-else');
  assert.deepEqual(limiter.stats, { active: 1, waiting: 2, shed: 5, keys: 2 });
  flood[0]!.open();
  await flood[1]!.started;
  flood[1]!.open();
  await other.started;
  other.open();
  await Promise.all([...held, served]);
  assert.deepEqual(limiter.stats, { active: 0, waiting: 0, shed: 5, keys: 0 });
});

test('a key gets its places back as its jobs finish, failed ones included', async () => {
  const limiter = createWorkLimiter({ concurrency: 2, queue: 2, perKey: 1 });
  await assert.rejects(limiter.run(async () => Promise.reject(new Error('boom')), 'a'), /boom/);
  const first = gated();
  const running = limiter.run(first.job, 'a');
  await assert.rejects(limiter.run(async () => {}, 'a'), LoginOverloadedError);
  first.open();
  await running;
  assert.equal(await limiter.run(async () => 7, 'a'), 7);
  assert.equal(limiter.stats.keys, 0);
});

test('jobs without a key share only the global bound', async () => {
  const limiter = createWorkLimiter({ concurrency: 1, queue: 1, perKey: 1 });
  const first = gated();
  const running = limiter.run(first.job);
  const queued = limiter.run(async () => {});
  await assert.rejects(limiter.run(async () => {}), LoginOverloadedError);
  first.open();
  await Promise.all([running, queued]);
});
