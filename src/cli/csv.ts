/**
 * A CSV reader after RFC 4180: comma-separated fields, double-quoted fields may hold commas,
 * line breaks and doubled quotes (`""`), records end with CRLF or LF, a leading UTF-8 BOM is
 * ignored. Each record carries the file line it starts on, so errors can name it (a quoted
 * field may span lines). A malformed record is reported with its line and skipped; the rest
 * are still read.
 *
 * It reads a stream a piece at a time (`createCsvParser`): text is written in as it arrives
 * and records are taken out one by one, so a file of any size is read holding one record and
 * the text not yet read. A record still open at the end of what was written waits for more
 * (up to `MAX_CSV_RECORD_CHARS`: past that the input is refused, `CsvRecordTooLongError`,
 * rather than held whole — in practice an unclosed quote).
 *
 * @example
 * parseCsv('username,email\njohndoe,"j@example.com"\n')
 * // [{ line: 1, fields: ['username', 'email'] }, { line: 2, fields: ['johndoe', 'j@example.com'] }]
 */

/** One record: its fields, or why it could not be read. */
export interface CsvRecord {
  /** The 1-based file line the record starts on. */
  line: number;
  fields: string[];
  /** Set when the record is malformed; `fields` is then what could be read. */
  error?: string;
}

/** The longest record the stream reader waits for (characters): far above any user's row. */
export const MAX_CSV_RECORD_CHARS = 1_048_576;

/** A record that goes on past `MAX_CSV_RECORD_CHARS` (an unclosed quote, most likely). */
export class CsvRecordTooLongError extends Error {
  constructor(readonly line: number) {
    super(`line ${line}: a record is longer than ${MAX_CSV_RECORD_CHARS} characters (an unclosed quote?)`);
  }
}

/** Thrown inside the record reader: the text written so far ends inside this record. */
const MORE = Symbol('more input needed');

const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

const newlines = (text: string): number => {
  let n = 0;
  for (let k = text.indexOf('\n'); k >= 0; k = text.indexOf('\n', k + 1)) n++;
  return n;
};

/**
 * Reads the record that starts at `start` of `s`. Unless `final`, throws MORE as soon as the
 * record might go on past the end of `s` (the same record is read again once more text came).
 */
function readRecord(s: string, start: number, line: number, final: boolean): { record: CsvRecord; end: number; line: number } {
  const more = (): void => {
    if (!final) throw MORE;
  };
  const first = line;
  const fields: string[] = [];
  let error: string | undefined;
  let i = start;
  for (;;) {
    let field = '';
    if (i >= s.length) more();
    if (s.charCodeAt(i) === QUOTE) {
      // A quoted field: up to the next lone quote, "" standing for one quote.
      i++;
      let closed = false;
      for (;;) {
        const q = s.indexOf('"', i);
        if (q < 0) {
          more();
          const rest = s.slice(i);
          field += rest;
          line += newlines(rest);
          i = s.length;
          break;
        }
        const part = s.slice(i, q);
        field += part;
        line += newlines(part);
        if (q + 1 >= s.length) more();
        if (s.charCodeAt(q + 1) === QUOTE) {
          field += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        closed = true;
        break;
      }
      if (!closed) {
        error = 'a quoted field is not closed';
        fields.push(field);
        break;
      }
      if (i >= s.length || (s.charCodeAt(i) === CR && i + 1 >= s.length)) more();
      const c = s.charCodeAt(i);
      if (i < s.length && c !== COMMA && c !== LF && !(c === CR && s.charCodeAt(i + 1) === LF)) error = 'unexpected text after a closing quote';
    }
    // The unquoted rest of the field (after a quoted part only when malformed).
    let j = i;
    for (; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c === COMMA || c === LF) break;
      if (c === CR) {
        if (j + 1 >= s.length) more();
        if (s.charCodeAt(j + 1) === LF) break;
      }
    }
    if (j >= s.length) more();
    field += s.slice(i, j);
    i = j;
    fields.push(field);
    if (s.charCodeAt(i) === COMMA) {
      i++;
      continue;
    }
    // End of record: CRLF, LF or end of text.
    if (s.charCodeAt(i) === CR) i++;
    if (s.charCodeAt(i) === LF) {
      i++;
      line++;
    }
    break;
  }
  return { record: error === undefined ? { line: first, fields } : { line: first, fields, error }, end: i, line };
}

/**
 * A CSV reader over a stream of text: `write` each piece as it arrives, take records with
 * `next` until it answers undefined (the rest needs more text), and `end` after the last
 * piece (then `next` also gives the last record).
 *
 * @example
 * const csv = createCsvParser();
 * for await (const text of stream) {
 *   csv.write(text);
 *   for (let r = csv.next(); r; r = csv.next()) use(r);
 * }
 * csv.end();
 * for (let r = csv.next(); r; r = csv.next()) use(r);
 */
export function createCsvParser(): { write(text: string): void; end(): void; next(): CsvRecord | undefined } {
  let buffer = '';
  let offset = 0;
  let line = 1;
  let started = false;
  let final = false;
  return {
    write(text) {
      if (!started && text.length > 0) {
        started = true;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      // Drop what was read before keeping more: the buffer holds the unread text only.
      buffer = buffer.slice(offset) + text;
      offset = 0;
    },
    end() {
      final = true;
    },
    next() {
      if (offset >= buffer.length) return undefined;
      try {
        const read = readRecord(buffer, offset, line, final);
        offset = read.end;
        line = read.line;
        return read.record;
      } catch (error) {
        if (error !== MORE) throw error;
        if (buffer.length - offset > MAX_CSV_RECORD_CHARS) throw new CsvRecordTooLongError(line);
        return undefined;
      }
    },
  };
}

/** Splits CSV text into records. Blank lines are kept as records of one empty field. */
export function parseCsv(text: string): CsvRecord[] {
  const csv = createCsvParser();
  csv.write(text);
  csv.end();
  const records: CsvRecord[] = [];
  for (let record = csv.next(); record; record = csv.next()) records.push(record);
  return records;
}
