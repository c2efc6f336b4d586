/**
 * Time comes in as a parameter so tests never patch `Date` (STYLE §7).
 *
 * @example
 * const clock = createManualClock(0); clock.advance(11_000);
 */

/**
 * Returns the current time in milliseconds since the epoch.
 *
 * @example
 * const clock: Clock = () => Date.now();
 */
export type Clock = () => number;

/**
 * The real clock (`Date.now`), the default everywhere a `Clock` is taken.
 *
 * @example
 * createAuthService({ store, secretKey, issuer, clock: systemClock });
 */
export const systemClock: Clock = () => Date.now();

/**
 * A clock that only moves when told to, for tests.
 *
 * @example
 * const clock = createManualClock(0); clock.advance(1_000); clock.set(60_000);
 */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(ms: number): void;
}

/**
 * Creates a clock that stands still until `advance` or `set` moves it (for tests of expiry and lockout windows).
 *
 * @example
 * const clock = createManualClock(Date.now());
 * const service = createAuthService({ store, secretKey, issuer, clock });
 * clock.advance(31 * 60_000); // the access tokens issued so far have expired
 */
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
