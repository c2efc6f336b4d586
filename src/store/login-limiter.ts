/**
 * The login limiter of SPEC §4, kept in the database so every instance on it sees the same
 * counts. Each counted event is one row per counter in `login_failures(key, at)` — a failure
 * under `pair:` (username key + client address) and `addr:` (client address), an attempt shed
 * with 503 under `addr:` only, a successful login under `ok:` (client address) — and a
 * counter is the number of its rows inside the sliding window. Nothing is read-modified-
 * written, so concurrent events are never lost.
 *
 * Keys are SHA-256 digests: a username field often holds a mistyped password, and should not
 * sit in the database in clear; digests also have a fixed length and never contain a NUL byte,
 * which PostgreSQL's text type refuses.
 *
 * Race bound: `check` runs before the password is verified and `recordFailure` after, so
 * attempts already past `check` when the limit is reached still count and still get their
 * answer. Per pair and window an attacker gets at most `maxFailures - 1` + (attempts in flight
 * at once) guesses; in-flight attempts from one address are bounded by its fair share of the
 * hashing bound (`hashPerAddress` per instance, SPEC §3 and §4), past which they are shed with
 * 503 — and counted toward the address's limit.
 *
 * @example
 * const limiter = createDatabaseLoginLimiter(store, { maxFailures: 5, windowSeconds: 900, addressMaxFailures: 100, addressMaxLogins: 1000 });
 * const service = createAuthService({ store, secretKey, issuer, limiter });
 */
import { createHash } from 'node:crypto';
import { ConfigError, TooManyAttemptsError } from '../core/errors.ts';
import { limiterAddress } from '../core/limiter-address.ts';
import type { LoginLimiter } from '../core/login-limiter.ts';
import type { KyselyStore } from './kysely-store.ts';

/**
 * Limits of the database limiter; the defaults are SPEC §1's.
 *
 * @example
 * createDatabaseLoginLimiter(store, { maxFailures: 5, addressMaxFailures: 100, windowSeconds: 900 });
 */
export interface DatabaseLoginLimiterOptions {
  /** Failures per (username, address) in the window before that pair is refused. Default 5. */
  maxFailures?: number | undefined;
  /** Failures (shed attempts included) per address in the window before every login from it is refused. Default 100. */
  addressMaxFailures?: number | undefined;
  /** Successful logins per address in the window before every login from it is refused. Default 1000. */
  addressMaxLogins?: number | undefined;
  /** Length of the sliding window in seconds. Default 900. */
  windowSeconds?: number | undefined;
}

/** How often (at most) one instance deletes rows that left the window, in milliseconds. */
const PRUNE_INTERVAL_MS = 60_000;

function wholeNumber(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(name, `must be a whole number ≥ 1, got ${value}`);
  return value;
}

/** Successful logins per address and window by default: far above any one person's, low enough to end a flood of right passwords. */
export const DEFAULT_ADDRESS_MAX_LOGINS = 1000;

/**
 * The limits with SPEC §1's defaults applied, validated once when a limiter is built (a bad
 * value throws ConfigError) and shared by every LoginLimiter implementation.
 *
 * @example
 * const { maxFailures, addressMaxFailures, addressMaxLogins, windowMs } = loginLimits({ maxFailures: 3 });
 */
export function loginLimits(options: DatabaseLoginLimiterOptions): { maxFailures: number; addressMaxFailures: number; addressMaxLogins: number; windowMs: number } {
  return {
    maxFailures: wholeNumber('maxFailures', options.maxFailures ?? 5),
    addressMaxFailures: wholeNumber('addressMaxFailures', options.addressMaxFailures ?? 100),
    addressMaxLogins: wholeNumber('addressMaxLogins', options.addressMaxLogins ?? DEFAULT_ADDRESS_MAX_LOGINS),
    windowMs: wholeNumber('windowSeconds', options.windowSeconds ?? 900) * 1000,
  };
}

// Re-exported: the store's limiters and the core's hashing fair share count the same address.
export { limiterAddress };

const digest = (value: string): string => createHash('sha256').update(value).digest('base64url');

/** The `login_failures.key` of a (username key, address) pair. */
export function pairFailureKey(usernameKey: string, address: string): string {
  // JSON keeps the two parts apart whatever characters either holds.
  return `pair:${digest(JSON.stringify([usernameKey, limiterAddress(address)]))}`;
}

/** The `login_failures.key` of an address. */
export function addressFailureKey(address: string): string {
  return `addr:${digest(limiterAddress(address))}`;
}

/** The `login_failures.key` under which an address's successful logins are counted. */
export function addressLoginKey(address: string): string {
  return `ok:${digest(limiterAddress(address))}`;
}

/**
 * A LoginLimiter over the store's database (SQLite or PostgreSQL).
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, limiter: createDatabaseLoginLimiter(store) });
 */
export function createDatabaseLoginLimiter(store: KyselyStore, options: DatabaseLoginLimiterOptions = {}): LoginLimiter {
  const { maxFailures, addressMaxFailures, addressMaxLogins, windowMs } = loginLimits(options);
  const { db } = store.database;
  let lastPrune = -Infinity;

  /** Inserts one event per key, then (now and then) sweeps rows that left the window. */
  const record = async (keys: string[], now: number): Promise<void> => {
    await db
      .insertInto('login_failures')
      .values(keys.map((key) => ({ key, at: now })))
      .execute();
    // Rows that left the window count for nothing; each instance sweeps them now and then
    // (queries ignore them anyway, so a late sweep costs only space).
    if (now - lastPrune >= PRUNE_INTERVAL_MS) {
      lastPrune = now;
      await db.deleteFrom('login_failures').where('at', '<=', now - windowMs).execute();
    }
  };

  /**
   * When the counter stops refusing: the counter refuses while `max` of its failures are in
   * the window, that is until its max-th newest failure leaves it. Undefined when it does
   * not refuse now. A failure at `at` counts while `now - at < window`.
   */
  const refusedUntil = async (key: string, max: number, now: number): Promise<number | undefined> => {
    const row = await db
      .selectFrom('login_failures')
      .select('at')
      .where('key', '=', key)
      .where('at', '>', now - windowMs)
      .orderBy('at', 'desc')
      .limit(1)
      .offset(max - 1)
      .executeTakeFirst();
    return row ? Number(row.at) + windowMs : undefined;
  };

  return {
    check: (usernameKey, address, now) =>
      store.guard(async () => {
        const found = await Promise.all([
          refusedUntil(pairFailureKey(usernameKey, address), maxFailures, now),
          refusedUntil(addressFailureKey(address), addressMaxFailures, now),
          refusedUntil(addressLoginKey(address), addressMaxLogins, now),
        ]);
        const until = Math.max(...found.map((at) => at ?? -Infinity));
        // Retry-After: the seconds until enough failures left the window (SPEC §4).
        if (until > now) throw new TooManyAttemptsError((until - now) / 1000);
      }),

    recordFailure: (usernameKey, address, now) => store.guard(() => record([pairFailureKey(usernameKey, address), addressFailureKey(address)], now)),

    // SPEC §4: an attempt shed with 503 counts toward the address's limit, not the pair's.
    recordShed: (address, now) => store.guard(() => record([addressFailureKey(address)], now)),

    recordSuccess: (usernameKey, address, now) =>
      store.guard(async () => {
        // SPEC §4: a success resets the pair only; the address keeps its failure count, and
        // its successful logins are bounded too (a flood of right passwords).
        await db.deleteFrom('login_failures').where('key', '=', pairFailureKey(usernameKey, address)).execute();
        await record([addressLoginKey(address)], now);
      }),
  };
}
