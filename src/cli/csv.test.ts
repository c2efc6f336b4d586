import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCsvParser, CsvRecordTooLongError, MAX_CSV_RECORD_CHARS, parseCsv, type CsvRecord } from './csv.ts';

/** A small deterministic generator, so a failure names a reproducible input. */
function random(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
}

/** Reads `text` written in pieces of 1 to `most` characters, taking records as they come. */
function readInPieces(text: string, most: number, rnd: (n: number) => number): CsvRecord[] {
  const csv = createCsvParser();
  const records: CsvRecord[] = [];
  for (let i = 0; i < text.length; ) {
    const n = 1 + rnd(most);
    csv.write(text.slice(i, i + n));
    i += n;
    for (let r = csv.next(); r; r = csv.next()) records.push(r);
  }
  csv.end();
  for (let r = csv.next(); r; r = csv.next()) records.push(r);
  return records;
}

test('text written in pieces gives the same records, lines and errors as the whole text at once', () => {
  const rnd = random(1);
  const alphabet = ['a', 'b', ',', '"', '""', '\n', '\r', '\r\n', ' ', '\uFEFF'];
  for (let t = 0; t < 20_000; t++) {
    let text = rnd(10) === 0 ? '\uFEFF' : '';
    for (let k = rnd(30); k > 0; k--) text += alphabet[rnd(alphabet.length)];
    assert.deepEqual(readInPieces(text, 4, rnd), parseCsv(text), JSON.stringify(text));
  }
});

test('a record is handed out as soon as its end has been read, not at the end of the input', () => {
  const csv = createCsvParser();
  csv.write('a,b\n"x\ny",1\nlast');
  assert.deepEqual(csv.next(), { line: 1, fields: ['a', 'b'] });
  assert.deepEqual(csv.next(), { line: 2, fields: ['x\ny', '1'] });
  assert.equal(csv.next(), undefined, 'the last record may go on');
  csv.write(',2\r');
  assert.equal(csv.next(), undefined, 'a CR may be the start of a CRLF');
  csv.write('\n');
  assert.deepEqual(csv.next(), { line: 4, fields: ['last', '2'] });
  csv.end();
  assert.equal(csv.next(), undefined);
});

test('a record that goes on past the bound (an unclosed quote) is refused instead of held whole', () => {
  const csv = createCsvParser();
  csv.write('username\nann\n"never closed');
  assert.deepEqual([csv.next(), csv.next()].map((r) => r?.fields), [['username'], ['ann']]);
  const piece = 'x'.repeat(64 * 1024);
  let thrown: unknown;
  for (let written = 0; written <= MAX_CSV_RECORD_CHARS + piece.length && thrown === undefined; written += piece.length) {
    csv.write(piece);
    try {
      csv.next();
    } catch (error) {
      thrown = error;
    }
  }
  assert.ok(thrown instanceof CsvRecordTooLongError);
  assert.equal(thrown.line, 3);
});
