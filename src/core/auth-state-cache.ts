/**
 * The bearer check's cache of session and user state (SPEC §2.2): at most `maxEntries`
 * sessions, the least recently used one evicted to make room. It used to be emptied whenever
 * it reached its size, which dropped the hit rate towards zero as soon as more sessions were in
 * use than it held; evicting one entry at a time keeps the hit rate near `maxEntries ÷ sessions
 * in use` for independent clients, and at 100 % for the sessions that come back often.
 *
 * Every operation is O(1) except `deleteUser` (O(that user's cached sessions)): the entries are
 * a least-recently-used cache (`lru-cache.ts`), and an index by user finds a user's sessions
 * without walking the cache.
 *
 * Invalidation is the caller's (`authenticate.ts`): it deletes what the store's change feed
 * names and clears everything when another process may have written.
 *
 * @example
 * const cache = createAuthStateCache(50_000);
 * cache.set(state.session.id, state);
 * cache.get(sid); // the state, now the most recently used
 * cache.deleteUser(userId); // every cached session of that user
 */
import { DEFAULTS } from './defaults.ts';
import { createLruCache } from './lru-cache.ts';
import type { AuthState } from './store.ts';

/** Sessions the bearer check keeps by default (`PORTCULLIS_SESSION_CACHE_SIZE`): about 1 KB each. */
export const DEFAULT_AUTH_CACHE_ENTRIES = DEFAULTS.sessionCacheSize.default;

/**
 * A bounded, least-recently-used map from session id to its AuthState, indexed by user.
 *
 * @example
 * const cache: AuthStateCache = createAuthStateCache(3);
 * if (!cache.get(sid)) cache.set(sid, await store.getAuthState(sid));
 */
export interface AuthStateCache {
  /** Sessions held now; never more than `maxEntries`. */
  readonly size: number;
  readonly maxEntries: number;
  /** The cached state, which becomes the most recently used; undefined when not cached. */
  get(sessionId: string): AuthState | undefined;
  /** Caches (or replaces) a session's state as the most recently used, evicting the least recently used one when full. */
  set(sessionId: string, state: AuthState): void;
  deleteSession(sessionId: string): void;
  /** Drops every cached session of the user. */
  deleteUser(userId: string): void;
  clear(): void;
  /** The cached session ids, least recently used first (the eviction order): for tests and diagnostics. */
  sessionIds(): string[];
}

/**
 * A cache of at most `maxEntries` sessions (a whole number ≥ 1).
 *
 * @example
 * const cache = createAuthStateCache(DEFAULT_AUTH_CACHE_ENTRIES);
 */
export function createAuthStateCache(maxEntries: number = DEFAULT_AUTH_CACHE_ENTRIES): AuthStateCache {
  // A user's cached sessions: one id (the common case, no Set allocated) or a Set of them.
  let byUser = new Map<string, string | Set<string>>();
  const indexUser = (userId: string, sessionId: string): void => {
    const held = byUser.get(userId);
    if (held === undefined) byUser.set(userId, sessionId);
    else if (typeof held === 'string') {
      if (held !== sessionId) byUser.set(userId, new Set([held, sessionId]));
    } else held.add(sessionId);
  };
  const unindexUser = (userId: string, sessionId: string): void => {
    const held = byUser.get(userId);
    if (held === undefined) return;
    if (typeof held === 'string') {
      if (held === sessionId) byUser.delete(userId);
      return;
    }
    held.delete(sessionId);
    if (held.size === 1) byUser.set(userId, held.values().next().value as string);
    else if (held.size === 0) byUser.delete(userId);
  };
  // Evictions and deletes keep the user index in step.
  const lru = createLruCache<AuthState>(maxEntries, (sessionId, state) => unindexUser(state.user.id, sessionId));

  return {
    get size() {
      return lru.size;
    },
    maxEntries,
    get: (sessionId) => lru.get(sessionId),
    set(sessionId, state) {
      // A replaced state of another user (never seen: a session keeps its user) leaves the old user's index.
      const previous = lru.get(sessionId);
      if (previous && previous.user.id !== state.user.id) unindexUser(previous.user.id, sessionId);
      lru.set(sessionId, state);
      indexUser(state.user.id, sessionId);
    },
    deleteSession(sessionId) {
      lru.delete(sessionId);
    },
    deleteUser(userId) {
      const held = byUser.get(userId);
      if (held === undefined) return;
      for (const sessionId of typeof held === 'string' ? [held] : [...held]) lru.delete(sessionId);
    },
    clear() {
      byUser = new Map();
      lru.clear();
    },
    sessionIds: () => lru.keys(),
  };
}
