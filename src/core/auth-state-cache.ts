/**
 * The bearer check's cache of session and user state (SPEC §2.2): at most `maxEntries`
 * sessions, the least recently used one evicted to make room. It used to be emptied whenever
 * it reached its size, which dropped the hit rate towards zero as soon as more sessions were in
 * use than it held; evicting one entry at a time keeps the hit rate near `maxEntries ÷ sessions
 * in use` for independent clients, and at 100 % for the sessions that come back often.
 *
 * Every operation is O(1) except `deleteUser` (O(that user's cached sessions)): the entries
 * sit in slots linked in recency order, a hit relinks its slot (no Map insert or delete on the
 * hot path), and an index by user finds a user's sessions without walking the cache.
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

const NONE = -1;

/**
 * A cache of at most `maxEntries` sessions (a whole number ≥ 1).
 *
 * @example
 * const cache = createAuthStateCache(DEFAULT_AUTH_CACHE_ENTRIES);
 */
export function createAuthStateCache(maxEntries: number = DEFAULT_AUTH_CACHE_ENTRIES): AuthStateCache {
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new TypeError(`maxEntries must be a whole number ≥ 1, got ${maxEntries}`);
  // Slots: parallel arrays, grown up to maxEntries and then reused; `prev`/`next` link the
  // used slots from the least (head) to the most (tail) recently used.
  let slotOf = new Map<string, number>();
  let ids: string[] = [];
  let states: Array<AuthState | undefined> = [];
  let users: string[] = [];
  let prev: number[] = [];
  let next: number[] = [];
  let free: number[] = [];
  let head = NONE;
  let tail = NONE;
  // A user's cached sessions: one id (the common case, no Set allocated) or a Set of them.
  let byUser = new Map<string, string | Set<string>>();

  const unlink = (slot: number): void => {
    const p = prev[slot]!;
    const n = next[slot]!;
    if (p === NONE) head = n;
    else next[p] = n;
    if (n === NONE) tail = p;
    else prev[n] = p;
  };
  const append = (slot: number): void => {
    prev[slot] = tail;
    next[slot] = NONE;
    if (tail === NONE) head = slot;
    else next[tail] = slot;
    tail = slot;
  };

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

  const remove = (slot: number): void => {
    unlink(slot);
    const sessionId = ids[slot]!;
    slotOf.delete(sessionId);
    unindexUser(users[slot]!, sessionId);
    ids[slot] = '';
    users[slot] = '';
    states[slot] = undefined;
    free.push(slot);
  };

  return {
    get size() {
      return slotOf.size;
    },
    maxEntries,
    get(sessionId) {
      const slot = slotOf.get(sessionId);
      if (slot === undefined) return undefined;
      // The hot path: a hit on the most recently used entry (one token in a loop) relinks nothing.
      if (slot !== tail) {
        unlink(slot);
        append(slot);
      }
      return states[slot];
    },
    set(sessionId, state) {
      const userId = state.user.id;
      const existing = slotOf.get(sessionId);
      if (existing !== undefined) {
        if (users[existing] !== userId) {
          unindexUser(users[existing]!, sessionId);
          users[existing] = userId;
          indexUser(userId, sessionId);
        }
        states[existing] = state;
        if (existing !== tail) {
          unlink(existing);
          append(existing);
        }
        return;
      }
      if (slotOf.size >= maxEntries) remove(head);
      const slot = free.pop() ?? ids.length;
      ids[slot] = sessionId;
      users[slot] = userId;
      states[slot] = state;
      slotOf.set(sessionId, slot);
      indexUser(userId, sessionId);
      append(slot);
    },
    deleteSession(sessionId) {
      const slot = slotOf.get(sessionId);
      if (slot !== undefined) remove(slot);
    },
    deleteUser(userId) {
      const held = byUser.get(userId);
      if (held === undefined) return;
      for (const sessionId of typeof held === 'string' ? [held] : [...held]) {
        const slot = slotOf.get(sessionId);
        if (slot !== undefined) remove(slot);
      }
    },
    clear() {
      // Fresh containers: clearing a large Map in place keeps its backing store.
      slotOf = new Map();
      byUser = new Map();
      ids = [];
      states = [];
      users = [];
      prev = [];
      next = [];
      free = [];
      head = NONE;
      tail = NONE;
    },
    sessionIds() {
      const out: string[] = [];
      for (let slot = head; slot !== NONE; slot = next[slot]!) out.push(ids[slot]!);
      return out;
    },
  };
}
