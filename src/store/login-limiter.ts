/**
 * The counting half of the login limiter (the policy is core/login-limiter.ts), kept in the
 * database so every instance on it sees the same counts. Each event is one row of
 * `login_failures(key, at)`, and a counter is the number of its key's rows inside the sliding
 * window. Nothing is read-modified-written, so concurrent events are never lost.
 *
 * @example
 * const limiter = createDatabaseLoginLimiter(store, { maxFailures: 5, windowSeconds: 900, addressMaxFailures: 100, addressMaxLogins: 1000 });
 * const service = createAuthService({ store, secretKey, issuer, limiter });
 */
import { createLoginLimiter, SWEEP_INTERVAL_MS, type LoginCounter, type LoginLimiter, type LoginLimits } from '../core/login-limiter.ts';
import type { Database } from './database.ts';

/**
 * A LoginCounter over `login_failures` (SQLite or PostgreSQL); `guard` turns an unreachable
 * database into StoreUnavailableError. The store offers it as `store.loginCounter`.
 *
 * @example
 * const counter = createDatabaseLoginCounter(database, guard);
 */
export function createDatabaseLoginCounter(database: Database, guard: <T>(fn: () => Promise<T>) => Promise<T>): LoginCounter {
  const { db } = database;
  let lastPrune = -Infinity;

  /** The time of the key's n-th newest row after `since`: one indexed query. */
  const nthNewest = async (key: string, n: number, since: number): Promise<number | undefined> => {
    const row = await db
      .selectFrom('login_failures')
      .select('at')
      .where('key', '=', key)
      .where('at', '>', since)
      .orderBy('at', 'desc')
      .limit(1)
      .offset(n - 1)
      .executeTakeFirst();
    return row ? Number(row.at) : undefined;
  };

  return {
    add: (keys, now, since) =>
      guard(async () => {
        await db
          .insertInto('login_failures')
          .values(keys.map((key) => ({ key, at: now })))
          .execute();
        // Rows that left the window count for nothing; each instance sweeps them now and then
        // (queries ignore them anyway, so a late sweep costs only space).
        if (now - lastPrune >= SWEEP_INTERVAL_MS) {
          lastPrune = now;
          await db.deleteFrom('login_failures').where('at', '<=', since).execute();
        }
      }),

    nthNewest: (queries, since) => guard(() => Promise.all(queries.map(([key, n]) => nthNewest(key, n, since)))),

    clear: (keys) =>
      guard(async () => {
        await db.deleteFrom('login_failures').where('key', 'in', [...keys]).execute();
      }),
  };
}

/**
 * A LoginLimiter over the database of a store from `openStore` (SQLite or PostgreSQL): SPEC
 * §4's policy (`createLoginLimiter`) over the store's `loginCounter`.
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, limiter: createDatabaseLoginLimiter(store, { maxFailures: 3 }) });
 */
export function createDatabaseLoginLimiter(store: { readonly loginCounter: LoginCounter }, limits: LoginLimits = {}): LoginLimiter {
  return createLoginLimiter(store.loginCounter, limits);
}
