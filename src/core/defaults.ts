/**
 * The one table of defaults and bounds (SPEC §1) for every whole-number setting that both the
 * server's configuration (`loadConfig` in src/config.ts, from the environment) and an app building the core
 * itself (`createAuthService`, the login limiters) can set. Both read their defaults here and
 * validate with `wholeNumber`, so the two refuse exactly the same values: a value that
 * `PORTCULLIS_ACCESS_TOKEN_TTL` refuses, `createAuthService({ accessTokenTtl })` refuses too.
 * Frozen, as Fastify's `defaultInitOptions`.
 *
 * @example
 * const ttl = wholeNumber('accessTokenTtl', options.accessTokenTtl, DEFAULTS.accessTokenTtl);
 */
import { ConfigError } from './errors.ts';
import { ARGON2_MAX_MEMORY_KIB, ARGON2_MAX_PARALLELISM, ARGON2_MAX_TIME } from './hash-params.ts';

/**
 * One whole-number setting: its default, its bounds (inclusive) and the environment variable
 * that sets it on the server.
 *
 * @example
 * const setting: WholeNumberSetting = { default: 900, min: 1, max: Number.MAX_SAFE_INTEGER, env: 'PORTCULLIS_LOGIN_WINDOW' };
 */
export interface WholeNumberSetting {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly env: string;
}

const MAX = Number.MAX_SAFE_INTEGER;
const setting = (env: string, value: number, min: number, max = MAX): WholeNumberSetting => Object.freeze({ default: value, min, max, env });

/**
 * Defaults and bounds of the whole-number settings, keyed by their `createAuthService` (or
 * limiter) option name. `hashConcurrency` and `hashQueue` are a library's defaults; the
 * server's configuration derives its own from the machine's cores (`loadConfig`).
 *
 * @example
 * createAuthService({ store, secretKey, refreshTokenTtl: 7 * 86_400 }); // accessTokenTtl: DEFAULTS.accessTokenTtl.default (1800)
 */
export const DEFAULTS = Object.freeze({
  /** Access-token lifetime in seconds. */
  accessTokenTtl: setting('PORTCULLIS_ACCESS_TOKEN_TTL', 1800, 1),
  /** Refresh-token (session) lifetime in seconds: 30 days. */
  refreshTokenTtl: setting('PORTCULLIS_REFRESH_TOKEN_TTL', 2_592_000, 1),
  /** Seconds a rotated refresh token still answers with its successor (0: off). */
  refreshReuseGrace: setting('PORTCULLIS_REFRESH_REUSE_GRACE', 10, 0, 3600),
  /** Failed logins per (username, address) pair in the window before that pair is refused (SPEC §4). */
  maxFailures: setting('PORTCULLIS_LOGIN_MAX_FAILURES', 5, 1),
  /** Length of the limiter's sliding window, in seconds. */
  windowSeconds: setting('PORTCULLIS_LOGIN_WINDOW', 900, 1),
  /** Failed (and shed) logins per address in the window before every login from it is refused. */
  addressMaxFailures: setting('PORTCULLIS_ADDRESS_MAX_FAILURES', 100, 1),
  /** Successful logins per address in the window: far above any one person's, low enough to end a flood of right passwords. */
  addressMaxLogins: setting('PORTCULLIS_ADDRESS_MAX_LOGINS', 1000, 1),
  /** Live sessions per user; a login beyond it ends the least recently used (SPEC §4). */
  maxSessions: setting('PORTCULLIS_MAX_SESSIONS', 100, 1, 1_000_000),
  /** argon2id memory in KiB: 64 MiB (OWASP Password Storage Cheat Sheet, "Argon2id"); within the bounds every stored hash is held to. */
  argon2MemoryCost: setting('PORTCULLIS_ARGON2_MEMORY', 65536, 1024, ARGON2_MAX_MEMORY_KIB),
  /** argon2id passes. */
  argon2TimeCost: setting('PORTCULLIS_ARGON2_TIME', 3, 1, ARGON2_MAX_TIME),
  /** argon2id lanes. */
  argon2Parallelism: setting('PORTCULLIS_ARGON2_PARALLELISM', 4, 1, ARGON2_MAX_PARALLELISM),
  /** Password hashes computed at once. */
  hashConcurrency: setting('PORTCULLIS_HASH_CONCURRENCY', 2, 1, 256),
  /** Password hashes waiting for a slot before logins are shed with 503 (SPEC §3). */
  hashQueue: setting('PORTCULLIS_HASH_QUEUE', 16, 0, 100_000),
  /**
   * Hashing jobs (running or queued) one client address may hold (SPEC §4 fair share): one
   * hashing and one waiting keeps a single client's logins flowing back to back, and leaves
   * every other place of the shared queue to other addresses.
   */
  hashPerAddress: setting('PORTCULLIS_HASH_PER_ADDRESS', 2, 1, 100_000),
  /**
   * Inactive introspection answers (`{"active": false}`) one client may get in 15 minutes
   * before it is refused with 429 (SPEC §7.5): far above a resource server's share of expired
   * tokens, and a hard stop for guessing.
   */
  introspectionMaxInactive: setting('PORTCULLIS_INTROSPECTION_MAX_INACTIVE', 1000, 1),
  /**
   * Sessions whose state the bearer check keeps in memory, the least recently used evicted
   * first (about 1 KB each: 50 MB at the default). Size it to the sessions in use at once; a
   * session not held costs a database read per request (docs/benchmarks.md, "Data at scale").
   */
  sessionCacheSize: setting('PORTCULLIS_SESSION_CACHE_SIZE', 50_000, 1, 10_000_000),
});

/**
 * The value of a whole-number setting: `value`, or the setting's default when undefined;
 * anything else than a whole number within its bounds throws a `ConfigError` naming `name`
 * (the option, or the environment variable).
 *
 * @example
 * wholeNumber('maxSessions', 0, DEFAULTS.maxSessions); // throws ConfigError: maxSessions: must be a whole number between 1 and 1000000, got 0
 */
export function wholeNumber(name: string, value: number | undefined, setting: WholeNumberSetting): number {
  if (value === undefined) return setting.default;
  if (!Number.isSafeInteger(value) || value < setting.min || value > setting.max) {
    throw new ConfigError(name, `must be a whole number between ${setting.min} and ${setting.max}, got ${value}`);
  }
  return value;
}
