/**
 * Time comes in as a parameter so tests never patch `Date` (STYLE §7).
 *
 * @example
 * const clock = createManualClock(0); clock.advance(11_000);
 */

/** Returns the current time in milliseconds since the epoch. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** A clock that only moves when told to, for tests. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(ms: number): void;
}

export function createManualClock(start = Date.now()): ManualClock {
  let now = start;
  const clock = (() => now) as ManualClock;
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}
