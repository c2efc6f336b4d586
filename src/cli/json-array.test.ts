import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createJsonArrayParser, JsonArrayError } from './json-array.ts';

function random(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
}

/** Reads `text` in pieces of 1 to 4 characters: the elements, or the error. */
function read(text: string, rnd: (n: number) => number): { values: unknown[]; error?: JsonArrayError } {
  const array = createJsonArrayParser();
  const values: unknown[] = [];
  try {
    for (let i = 0; i < text.length; ) {
      const n = 1 + rnd(4);
      array.write(text.slice(i, i + n));
      i += n;
      for (let e = array.next(); e; e = array.next()) values.push(e.value);
    }
    array.end();
    for (let e = array.next(); e; e = array.next()) values.push(e.value);
  } catch (error) {
    if (!(error instanceof JsonArrayError)) throw error;
    return { values, error };
  }
  return { values };
}

test('accepts exactly what JSON.parse accepts as an array, element by element, whatever the pieces', () => {
  const rnd = random(7);
  const alphabet = ['[', ']', '{', '}', ',', ':', '"', '\\', '"a"', '1', ' ', '\n', 'x', 'true', '"\\""', '{"a":[1,2]}', '"]"', '"[,"', '\uFEFF'];
  for (let t = 0; t < 30_000; t++) {
    let text = rnd(3) === 0 ? '[' : '';
    for (let k = rnd(14); k > 0; k--) text += alphabet[rnd(alphabet.length)];
    if (rnd(3) === 0) text += ']';
    let expected: unknown;
    let valid = true;
    try {
      expected = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch {
      valid = false;
    }
    const { values, error } = read(text, rnd);
    if (!valid) assert.equal(error?.notJson, true, JSON.stringify(text));
    else if (!Array.isArray(expected)) assert.equal(error?.notJson, false, JSON.stringify(text));
    else {
      assert.equal(error, undefined, JSON.stringify(text));
      assert.deepEqual(values, expected, JSON.stringify(text));
    }
  }
});

test('reads arrays of nested values, strings holding brackets and quotes, with a BOM and any spacing', () => {
  const rnd = random(11);
  const value = [{ username: 'a]b,c"[{', scopes: ['me', 'x'], n: -1.5e3, ok: true, none: null }, 'text', [[], {}], 'ünïcödé 😀'];
  for (const text of ['\uFEFF' + JSON.stringify(value), JSON.stringify(value, null, 2) + '\r\n', ` \n ${JSON.stringify(value, null, '\t')}`]) {
    assert.deepEqual(read(text, rnd), { values: value });
  }
  assert.deepEqual(read('[]', rnd), { values: [] });
});

test('numbers each element from 1 and names the element at fault', () => {
  const array = createJsonArrayParser();
  array.write('[{"a": 1}, {"b": 2}, {"c": }]');
  assert.deepEqual(array.next(), { index: 1, value: { a: 1 } });
  assert.deepEqual(array.next(), { index: 2, value: { b: 2 } });
  assert.throws(() => array.next(), (error: JsonArrayError) => error.notJson && /\(in element 3\)$/.test(error.message));
});
