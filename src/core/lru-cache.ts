/**
 * A bounded map from string keys to values that evicts its least recently used entry when a
 * new one needs the room: the policy of the bearer check's caches (verified tokens, session
 * state). Emptying a cache when it fills, as they used to, drops its hit rate towards zero as
 * soon as more keys are in use than it holds; evicting one entry at a time keeps it near
 * `maxEntries ÷ keys in use` for independent clients.
 *
 * Every operation is O(1). Entries sit in slots (parallel arrays) linked in recency order, so a
 * hit relinks its slot and never inserts into or deletes from a Map (V8's ordered hash tables
 * degrade when one key is deleted and re-added over and over).
 *
 * @example
 * const cache = createLruCache<Claims>(4096);
 * cache.set(token, claims);
 * cache.get(token); // claims, now the most recently used
 */

/**
 * The cache; `keys()` lists the keys from the least to the most recently used (the eviction order).
 *
 * @example
 * const cache: LruCache<number> = createLruCache(2);
 */
export interface LruCache<V> {
  readonly size: number;
  readonly maxEntries: number;
  /** The value, which becomes the most recently used; undefined when absent. */
  get(key: string): V | undefined;
  /** Stores (or replaces) the value as the most recently used, evicting the least recently used entry when full. */
  set(key: string, value: V): void;
  /** Removes the entry; false when there was none. */
  delete(key: string): boolean;
  /** Removes every entry (without calling `onRemove`). */
  clear(): void;
  /** The keys, least recently used first: for tests and diagnostics. */
  keys(): string[];
}

const NONE = -1;

/**
 * A cache of at most `maxEntries` (a whole number ≥ 1) entries. `onRemove` is told of every
 * entry that leaves by eviction or `delete` (not by `clear`), to keep an index in step.
 *
 * @example
 * const cache = createLruCache<string>(1000, (key, value) => index.forget(value, key));
 */
export function createLruCache<V>(maxEntries: number, onRemove?: (key: string, value: V) => void): LruCache<V> {
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new TypeError(`maxEntries must be a whole number ≥ 1, got ${maxEntries}`);
  let slotOf = new Map<string, number>();
  let keys: string[] = [];
  let values: Array<V | undefined> = [];
  let prev: number[] = [];
  let next: number[] = [];
  let free: number[] = [];
  // From the least (head) to the most (tail) recently used.
  let head = NONE;
  let tail = NONE;

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
  const touch = (slot: number): void => {
    // A hit on the most recently used entry (one client in a loop) relinks nothing.
    if (slot === tail) return;
    unlink(slot);
    append(slot);
  };
  const remove = (slot: number): void => {
    unlink(slot);
    const key = keys[slot]!;
    const value = values[slot] as V;
    slotOf.delete(key);
    keys[slot] = '';
    values[slot] = undefined;
    free.push(slot);
    onRemove?.(key, value);
  };

  return {
    get size() {
      return slotOf.size;
    },
    maxEntries,
    get(key) {
      const slot = slotOf.get(key);
      if (slot === undefined) return undefined;
      touch(slot);
      return values[slot];
    },
    set(key, value) {
      const existing = slotOf.get(key);
      if (existing !== undefined) {
        values[existing] = value;
        touch(existing);
        return;
      }
      if (slotOf.size >= maxEntries) remove(head);
      const slot = free.pop() ?? keys.length;
      keys[slot] = key;
      values[slot] = value;
      slotOf.set(key, slot);
      append(slot);
    },
    delete(key) {
      const slot = slotOf.get(key);
      if (slot === undefined) return false;
      remove(slot);
      return true;
    },
    clear() {
      // Fresh containers: clearing a large Map in place keeps its backing store.
      slotOf = new Map();
      keys = [];
      values = [];
      prev = [];
      next = [];
      free = [];
      head = NONE;
      tail = NONE;
    },
    keys() {
      const out: string[] = [];
      for (let slot = head; slot !== NONE; slot = next[slot]!) out.push(keys[slot]!);
      return out;
    },
  };
}
