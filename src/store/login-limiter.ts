/**
 * The failed-login limiter of SPEC §4, kept in the database so every instance on it sees the
 * same counts. Each failure is one row per counter — `pair:` (username key + client address)
 * and `addr:` (client address) — in `login_failures(key, at)`, and a counter is the number of
 * its rows inside the sliding window. Nothing is read-modified-written, so concurrent failures
 * are never lost.
 *
 * Keys are SHA-256 digests: a username field often holds a mistyped password, and should not
 * sit in the database in clear; digests also have a fixed length and never contain a NUL byte,
 * which PostgreSQL's text type refuses.
 *
 * Race bound: `check` runs before the password is verified and `recordFailure` after, so
 * attempts already past `check` when the limit is reached still count and still get their
 * answer. Per pair and window an attacker gets at most `maxFailures - 1` + (attempts in flight
 * at once) guesses; in-flight attempts are bounded by the hashing bound (`hashConcurrency` +
 * `hashQueue` per instance, SPEC §3), past which logins are shed with 503.
 *
 * @example
 * const limiter = createDatabaseLoginLimiter(store, { maxFailures: 5, windowSeconds: 900, addressMaxFailures: 100 });
 * const service = createAuthService({ store, secretKey, issuer, limiter });
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { ConfigError, TooManyAttemptsError } from '../core/errors.ts';
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
  /** Failures per address in the window before every login from it is refused. Default 100. */
  addressMaxFailures?: number | undefined;
  /** Length of the sliding window in seconds. Default 900. */
  windowSeconds?: number | undefined;
}

/** How often (at most) one instance deletes rows that left the window, in milliseconds. */
const PRUNE_INTERVAL_MS = 60_000;

function wholeNumber(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(name, `must be a whole number ≥ 1, got ${value}`);
  return value;
}

/**
 * The limits with SPEC §1's defaults applied, validated once when a limiter is built (a bad
 * value throws ConfigError) and shared by every LoginLimiter implementation.
 *
 * @example
 * const { maxFailures, addressMaxFailures, windowMs } = loginLimits({ maxFailures: 3 });
 */
export function loginLimits(options: DatabaseLoginLimiterOptions): { maxFailures: number; addressMaxFailures: number; windowMs: number } {
  return {
    maxFailures: wholeNumber('maxFailures', options.maxFailures ?? 5),
    addressMaxFailures: wholeNumber('addressMaxFailures', options.addressMaxFailures ?? 100),
    windowMs: wholeNumber('windowSeconds', options.windowSeconds ?? 900) * 1000,
  };
}

/**
 * The address a limit is counted for: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4
 * client, and IPv6 clients count per /64 — one host usually holds a whole /64, so counting
 * single IPv6 addresses would let it pick a fresh address for every guess.
 *
 * @example
 * limiterAddress('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 */
export function limiterAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1] as string;
  const bare = address.replace(/%.*$/, '');
  if (!isIPv6(bare)) return address;
  const [head = '', tail] = bare.split('::');
  const groups = (part: string | undefined): string[] => {
    if (!part) return [];
    // An embedded IPv4 tail (::1.2.3.4) fills two groups; only the first four groups matter.
    return part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  };
  const before = groups(head);
  const after = groups(tail);
  const full = tail === undefined ? before : [...before, ...Array(8 - before.length - after.length).fill('0'), ...after];
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

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

/**
 * A LoginLimiter over the store's database (SQLite or PostgreSQL).
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, limiter: createDatabaseLoginLimiter(store) });
 */
export function createDatabaseLoginLimiter(store: KyselyStore, options: DatabaseLoginLimiterOptions = {}): LoginLimiter {
  const { maxFailures, addressMaxFailures, windowMs } = loginLimits(options);
  const { db } = store.database;
  let lastPrune = -Infinity;

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
        const [pair, all] = await Promise.all([
          refusedUntil(pairFailureKey(usernameKey, address), maxFailures, now),
          refusedUntil(addressFailureKey(address), addressMaxFailures, now),
        ]);
        const until = Math.max(pair ?? -Infinity, all ?? -Infinity);
        // Retry-After: the seconds until enough failures left the window (SPEC §4).
        if (until > now) throw new TooManyAttemptsError((until - now) / 1000);
      }),

    recordFailure: (usernameKey, address, now) =>
      store.guard(async () => {
        await db
          .insertInto('login_failures')
          .values([
            { key: pairFailureKey(usernameKey, address), at: now },
            { key: addressFailureKey(address), at: now },
          ])
          .execute();
        // Rows that left the window count for nothing; each instance sweeps them now and then
        // (queries ignore them anyway, so a late sweep costs only space).
        if (now - lastPrune >= PRUNE_INTERVAL_MS) {
          lastPrune = now;
          await db.deleteFrom('login_failures').where('at', '<=', now - windowMs).execute();
        }
      }),

    recordSuccess: (usernameKey, address) =>
      store.guard(async () => {
        // SPEC §4: a success resets the pair only; the address keeps its count.
        await db.deleteFrom('login_failures').where('key', '=', pairFailureKey(usernameKey, address)).execute();
      }),
  };
}
