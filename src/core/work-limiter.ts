/**
 * A bound on concurrent expensive work (password hashing): at most `concurrency` jobs run,
 * at most `queue` wait, and anything past that is refused at once with
 * `LoginOverloadedError` (503 + Retry-After) instead of queueing without end (SPEC §3).
 *
 * Fair share (SPEC §4): a job may name the client it runs for (`key`, its address). One key
 * may hold at most `perKey` jobs, running and waiting together; its next job is refused at
 * once without touching the shared queue, so one client flooding logins keeps at most
 * `perKey` of the `concurrency + queue` places and everybody else still gets one.
 *
 * @example
 * const limiter = createWorkLimiter({ concurrency: 2, queue: 16, perKey: 2 });
 * await limiter.run(() => argon2.verify(hash, password), '203.0.113.7');
 */
import { LoginOverloadedError } from './errors.ts';

export interface WorkLimiter {
  /** Runs `job` in a slot; `key` (a client address) is held to its fair share. */
  run<T>(job: () => Promise<T>, key?: string): Promise<T>;
  /** Jobs running now, jobs waiting, jobs refused since creation, and keys holding jobs now. */
  readonly stats: { readonly active: number; readonly waiting: number; readonly shed: number; readonly keys: number };
}

export function createWorkLimiter(options: { concurrency: number; queue: number; perKey?: number | undefined }): WorkLimiter {
  const { concurrency, queue } = options;
  const perKey = options.perKey ?? Infinity;
  let active = 0;
  let shed = 0;
  const waiting: Array<() => void> = [];
  /** Jobs (running or waiting) per key; a key leaves the map with its last job, so it stays small. */
  const held = new Map<string, number>();

  const release = (): void => {
    const next = waiting.shift();
    // Hand the slot straight to the next waiter so no newcomer can slip in between.
    if (next) next();
    else active--;
  };
  const refuse = (): never => {
    shed++;
    throw new LoginOverloadedError();
  };

  return {
    async run<T>(job: () => Promise<T>, key?: string): Promise<T> {
      const mine = key === undefined ? 0 : (held.get(key) ?? 0);
      if (mine >= perKey) refuse();
      let turn: Promise<void> | undefined;
      if (active < concurrency) {
        active++;
      } else if (waiting.length < queue) {
        turn = new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        refuse();
      }
      if (key !== undefined) held.set(key, mine + 1);
      try {
        if (turn) await turn;
        return await job();
      } finally {
        release();
        if (key !== undefined) {
          const left = (held.get(key) ?? 1) - 1;
          if (left > 0) held.set(key, left);
          else held.delete(key);
        }
      }
    },
    get stats() {
      return { active, waiting: waiting.length, shed, keys: held.size };
    },
  };
}
