/**
 * A bound on concurrent expensive work (password hashing): at most `concurrency` jobs run,
 * at most `queue` wait, and anything past that is refused at once with
 * `LoginOverloadedError` (503 + Retry-After) instead of queueing without end (SPEC §3).
 *
 * @example
 * const limiter = createWorkLimiter({ concurrency: 2, queue: 16 });
 * await limiter.run(() => argon2.verify(hash, password));
 */
import { LoginOverloadedError } from './errors.ts';

export interface WorkLimiter {
  run<T>(job: () => Promise<T>): Promise<T>;
  /** Jobs running now, jobs waiting, and jobs refused since creation. */
  readonly stats: { readonly active: number; readonly waiting: number; readonly shed: number };
}

export function createWorkLimiter(options: { concurrency: number; queue: number }): WorkLimiter {
  const { concurrency, queue } = options;
  let active = 0;
  let shed = 0;
  const waiting: Array<() => void> = [];

  const release = (): void => {
    const next = waiting.shift();
    // Hand the slot straight to the next waiter so no newcomer can slip in between.
    if (next) next();
    else active--;
  };

  return {
    async run<T>(job: () => Promise<T>): Promise<T> {
      if (active < concurrency) {
        active++;
      } else if (waiting.length < queue) {
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        shed++;
        throw new LoginOverloadedError();
      }
      try {
        return await job();
      } finally {
        release();
      }
    },
    get stats() {
      return { active, waiting: waiting.length, shed };
    },
  };
}
