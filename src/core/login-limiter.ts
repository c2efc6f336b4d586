/**
 * The failed-login limiter of SPEC §4: the policy here, the counting in a `LoginCounter` that
 * a storage adapter provides (the database's `login_failures` table, Redis sorted sets, or
 * this process's memory), as fastify-rate-limit splits its limiter from its stores.
 *
 * Policy: failures are counted per (username key, client address) pair (`pair:`) and per
 * client address (`addr:`), successful logins per client address (`ok:`), each in a sliding
 * window; a login is refused (429) while any counter holds its maximum. Addresses are counted
 * as `limiterAddress` groups them (IPv6 per /64). Keys are SHA-256 digests: a username field
 * often holds a mistyped password, and should not sit in a database in clear; digests also
 * have a fixed length and never contain a NUL byte, which PostgreSQL's text type refuses.
 *
 * Race bound: `check` runs before the password is verified and `recordFailure` after, so
 * attempts already past `check` when the limit is reached still count and still get their
 * answer. Per pair and window an attacker gets at most `maxFailures - 1` + (attempts in flight
 * at once) guesses; in-flight attempts from one address are bounded by its fair share of the
 * hashing bound (`hashPerAddress` per instance, SPEC §3 and §4), past which they are shed with
 * 503 — and counted toward the address's limit.
 *
 * @example
 * const limiter = createLoginLimiter(store.loginCounter!, { maxFailures: 5, windowSeconds: 900 });
 * const service = createAuthService({ store, secretKey, limiter });
 */
import { createHash } from 'node:crypto';
import { DEFAULTS, wholeNumber } from './defaults.ts';
import { TooManyAttemptsError } from './errors.ts';
import { limiterAddress } from './limiter-address.ts';

/**
 * The login limiter protocol (SPEC §4). The password grant asks it before hashing and tells it
 * about failures, successes and shed attempts; `createLoginLimiter` builds the one Portcullis
 * uses over a `LoginCounter`, so the counts live where every instance sees them.
 *
 * Contract: failures are counted per (username key, client address) and per client address,
 * and successful logins per client address, each in a sliding window; `check` throws
 * TooManyAttemptsError (with the seconds until the oldest counted event leaves the window)
 * once any count reaches its maximum; refused attempts count for nothing; `recordSuccess`
 * clears the pair and counts one success for the address; `recordShed` counts one failure for
 * the address only (an attempt shed with 503 — a flood — and not the pair's, so a user shed
 * during someone else's flood is never locked out of their own account). Addresses are
 * counted as `limiterAddress` groups them.
 *
 * @example
 * const limiter: LoginLimiter = { async check() {}, async recordFailure() {}, async recordSuccess() {}, async recordShed() {} };
 */
export interface LoginLimiter {
  check(usernameKey: string, address: string, now: number): Promise<void>;
  recordFailure(usernameKey: string, address: string, now: number): Promise<void>;
  recordSuccess(usernameKey: string, address: string, now: number): Promise<void>;
  /** An attempt from `address` was shed (503) before its password was checked. */
  recordShed(address: string, now: number): Promise<void>;
  /** Resolves when the limiter's own backend (if it has one apart from the store) answers; for /readyz. */
  ping?(): Promise<void>;
}

/**
 * Where a login limiter keeps its counts: for each key, the times of its events. The storage
 * half of a limiter; `createLoginLimiter` adds the policy (which keys, what limits, when to
 * refuse). Times are the caller's clock (milliseconds), never the backend's.
 *
 * Contract (run against the database counter on SQLite and PostgreSQL and the Redis counter by
 * test/login-limiter.test.ts and test/redis-login-limiter.test.ts, against the memory counter
 * by src/core/login-limiter.test.ts):
 * - `add` records one event at `now` under each key. Concurrent adds are never lost (insert
 *   an event, never read-modify-write a count). Events at or before `since` count for nothing:
 *   the counter may drop them, and may forget a key `now - since` ms after its newest event.
 * - `nthNewest` answers, for each `[key, n]`, the time of the key's n-th newest event later
 *   than `since` (n = 1: the newest), or undefined when it holds fewer — in one round trip
 *   where the backend has round trips (the limiter asks it once per login). A count alone
 *   would not do: the limiter refuses until the event that keeps the count at its maximum
 *   leaves the window, and racing requests can push a count past its maximum.
 * - `clear` forgets every event of the keys.
 * - A backend that cannot be reached rejects with StoreUnavailableError (503), within bounded time.
 *
 * @example
 * const counter: LoginCounter = createMemoryLoginCounter();
 * await counter.add(['addr:x'], now, now - 900_000);
 * const [newest] = await counter.nthNewest([['addr:x', 1]], now - 900_000); // now
 */
export interface LoginCounter {
  add(keys: readonly string[], now: number, since: number): Promise<void>;
  nthNewest(queries: readonly (readonly [key: string, n: number])[], since: number): Promise<(number | undefined)[]>;
  clear(keys: readonly string[]): Promise<void>;
  /** Resolves when the counter's backend answers, if it has one apart from the store; for /readyz. */
  ping?(): Promise<void>;
}

/**
 * Limits of a login limiter; each unset one takes its default from the defaults table
 * (`DEFAULTS`, SPEC §1: 5, 100, 1000, 900 s).
 *
 * @example
 * const limits: LoginLimits = { maxFailures: 5, addressMaxFailures: 100, addressMaxLogins: 1000, windowSeconds: 900 };
 */
export interface LoginLimits {
  /** Failures per (username, address) in the window before that pair is refused. Default 5. */
  maxFailures?: number | undefined;
  /** Failures (shed attempts included) per address in the window before every login from it is refused. Default 100. */
  addressMaxFailures?: number | undefined;
  /** Successful logins per address in the window before every login from it is refused. Default 1000. */
  addressMaxLogins?: number | undefined;
  /** Length of the sliding window in seconds. Default 900. */
  windowSeconds?: number | undefined;
}

const digest = (value: string): string => createHash('sha256').update(value).digest('base64url');

/**
 * The counter key of a (username key, address) pair's failures.
 *
 * @example
 * pairFailureKey(usernameKey('johndoe'), '203.0.113.1') // 'pair:…'
 */
export function pairFailureKey(usernameKey: string, address: string): string {
  // JSON keeps the two parts apart whatever characters either holds.
  return `pair:${digest(JSON.stringify([usernameKey, limiterAddress(address)]))}`;
}

/**
 * The counter key of an address's failures (shed attempts included).
 *
 * @example
 * addressFailureKey('2001:db8::1') === addressFailureKey('2001:db8::2') // true: one /64
 */
export function addressFailureKey(address: string): string {
  return `addr:${digest(limiterAddress(address))}`;
}

/**
 * The counter key of an address's successful logins.
 *
 * @example
 * addressLoginKey('203.0.113.1') // 'ok:…'
 */
export function addressLoginKey(address: string): string {
  return `ok:${digest(limiterAddress(address))}`;
}

/**
 * A LoginLimiter with SPEC §4's policy over `counter`. The limits are validated here, once,
 * when it is built (a bad value throws ConfigError naming it), whatever the counter.
 *
 * @example
 * const limiter = createLoginLimiter(createMemoryLoginCounter(), { maxFailures: 3 });
 * await limiter.check(usernameKey('johndoe'), '203.0.113.1', Date.now()); // throws TooManyAttemptsError past the limit
 */
export function createLoginLimiter(counter: LoginCounter, limits: LoginLimits = {}): LoginLimiter {
  const maxFailures = wholeNumber('maxFailures', limits.maxFailures, DEFAULTS.maxFailures);
  const addressMaxFailures = wholeNumber('addressMaxFailures', limits.addressMaxFailures, DEFAULTS.addressMaxFailures);
  const addressMaxLogins = wholeNumber('addressMaxLogins', limits.addressMaxLogins, DEFAULTS.addressMaxLogins);
  const windowMs = wholeNumber('windowSeconds', limits.windowSeconds, DEFAULTS.windowSeconds) * 1000;
  // An event at `at` counts while `now - at < window`.
  const since = (now: number): number => now - windowMs;

  return {
    async check(usernameKey, address, now) {
      // A counter refuses while `max` of its events are in the window, that is until its
      // max-th newest event leaves it.
      const found = await counter.nthNewest(
        [
          [pairFailureKey(usernameKey, address), maxFailures],
          [addressFailureKey(address), addressMaxFailures],
          [addressLoginKey(address), addressMaxLogins],
        ],
        since(now),
      );
      const until = Math.max(...found.map((at) => (at === undefined ? -Infinity : at + windowMs)));
      // Retry-After: the seconds until enough events left the window (SPEC §4).
      if (until > now) throw new TooManyAttemptsError((until - now) / 1000);
    },

    recordFailure: (usernameKey, address, now) => counter.add([pairFailureKey(usernameKey, address), addressFailureKey(address)], now, since(now)),

    // SPEC §4: an attempt shed with 503 counts toward the address's limit, not the pair's.
    recordShed: (address, now) => counter.add([addressFailureKey(address)], now, since(now)),

    async recordSuccess(usernameKey, address, now) {
      // SPEC §4: a success resets the pair only; the address keeps its failure count, and its
      // successful logins are bounded too (a flood of right passwords). Two keys apart, so
      // the two run side by side (pipelined on one Redis connection).
      await Promise.all([counter.clear([pairFailureKey(usernameKey, address)]), counter.add([addressLoginKey(address)], now, since(now))]);
    },

    ...(counter.ping ? { ping: () => (counter.ping as () => Promise<void>)() } : {}),
  };
}

/** How often (at most) a counter sweeps keys whose events all left the window, in milliseconds. */
export const SWEEP_INTERVAL_MS = 60_000;

/**
 * A LoginCounter in this process's memory, as fastify-rate-limit's LocalStore: for a single
 * instance whose store keeps no counts, or for tests. Counts are lost on restart and not
 * shared between processes. Keys whose events all left the window are swept at most once a
 * minute, so memory stays bounded by the events of one window.
 *
 * @example
 * const service = createAuthService({ store, secretKey, limiter: createLoginLimiter(createMemoryLoginCounter()) });
 */
export function createMemoryLoginCounter(): LoginCounter {
  /** Event times per key, oldest first. */
  const events = new Map<string, number[]>();
  let lastSweep = -Infinity;
  return {
    async add(keys, now, since) {
      for (const key of keys) {
        const times = (events.get(key) ?? []).filter((at) => at > since);
        times.push(now);
        // A clock set back (tests) can add out of order.
        if (times.length > 1 && (times.at(-2) as number) > now) times.sort((a, b) => a - b);
        events.set(key, times);
      }
      if (now - lastSweep >= SWEEP_INTERVAL_MS) {
        lastSweep = now;
        for (const [key, times] of events) if ((times.at(-1) as number) <= since) events.delete(key);
      }
    },
    async nthNewest(queries, since) {
      return queries.map(([key, n]) => {
        const times = events.get(key) ?? [];
        const at = times[times.length - n];
        return at !== undefined && at > since ? at : undefined;
      });
    },
    async clear(keys) {
      for (const key of keys) events.delete(key);
    },
  };
}

/**
 * A limiter that never refuses, for apps that rate-limit elsewhere.
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, limiter: unlimitedLoginLimiter });
 */
export const unlimitedLoginLimiter: LoginLimiter = {
  async check() {},
  async recordFailure() {},
  async recordSuccess() {},
  async recordShed() {},
};
