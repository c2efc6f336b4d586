import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLruCache } from './lru-cache.ts';

test('holds at most maxEntries, evicting the least recently used; a read or a replacement makes an entry the most recently used', () => {
  const removed: string[] = [];
  const cache = createLruCache<number>(3, (key, value) => removed.push(`${key}=${value}`));
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  assert.equal(cache.get('a'), 1);
  cache.set('b', 20);
  assert.deepEqual(cache.keys(), ['c', 'a', 'b']);
  cache.set('d', 4);
  assert.deepEqual(cache.keys(), ['a', 'b', 'd']);
  assert.deepEqual(removed, ['c=3'], 'told of the eviction, not of the replacement');
  assert.equal(cache.get('c'), undefined);
  assert.equal(cache.get('b'), 20);
  for (let i = 0; i < 100; i++) {
    cache.set(`k${i}`, i);
    assert.ok(cache.size <= 3);
  }
  assert.deepEqual(cache.keys(), ['k97', 'k98', 'k99']);
  assert.equal(removed.length, 1 + 100);
});

test('delete tells onRemove and frees a place; clear empties without telling', () => {
  const removed: string[] = [];
  const cache = createLruCache<number>(2, (key) => removed.push(key));
  cache.set('a', 1);
  cache.set('b', 2);
  assert.equal(cache.delete('a'), true);
  assert.equal(cache.delete('a'), false);
  cache.set('c', 3);
  assert.deepEqual(cache.keys(), ['b', 'c'], 'the freed place was used: nothing evicted');
  assert.deepEqual(removed, ['a']);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.deepEqual(removed, ['a']);
  cache.set('d', 4);
  assert.deepEqual(cache.keys(), ['d']);
});

test('refuses a bound that is not a whole number of at least 1', () => {
  for (const bad of [0, -1, 2.5, Number.NaN, Infinity]) assert.throws(() => createLruCache(bad), TypeError);
});
