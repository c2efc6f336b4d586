/**
 * The rows of a `users import` file, read as a stream (SPEC §6): JSON (an array of objects)
 * or CSV (a header line naming the columns, then one user per record). A file of a million
 * users is read holding one row and one piece of text at a time (csv.ts, json-array.ts),
 * never the whole file.
 *
 * A named file is read twice: a first pass counts the rows (for the progress bar) and finds
 * any fault of the file as a whole (no header, not JSON, not an array, cut short) before
 * anything is imported, as when the whole file was read up front; the second pass yields
 * the rows. Standard input (`-`) can be read only once: its header (or opening `[`) is
 * checked before the import starts, but a fault further on stops the import there, after the
 * rows before it went in (a re-run after fixing the input skips those: imports are
 * idempotent).
 *
 * @example
 * const source = await openImportSource('users.csv', io);
 * for await (const row of source.rows()) console.log(row.line, row.fields ?? row.error);
 */
import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createCsvParser, CsvRecordTooLongError, type CsvRecord } from './csv.ts';
import { CliError, type CliIo } from './io.ts';
import { createJsonArrayParser, JsonArrayError } from './json-array.ts';

/** The columns of SPEC §6; `hashed_password` (the FastAPI tutorial's name) also means `password_hash`. */
export const IMPORT_COLUMNS = ['username', 'email', 'full_name', 'disabled', 'scopes', 'password', 'password_hash'] as const;
const ALIASES: Record<string, string> = { hashed_password: 'password_hash' };

/** Bytes read from a file at a time. */
const READ_CHUNK_BYTES = 64 * 1024;

/** A row as read from the file: its position for messages, and its raw fields. */
export interface ImportRow {
  line: number;
  fields?: Record<string, unknown>;
  error?: string;
}

/**
 * Where the rows come from: how many there are (when known before reading them: a named
 * file), and the rows themselves, read as they are asked for.
 *
 * @example
 * const { total } = await openImportSource('users.json', io); // the number of array elements
 */
export interface ImportSource {
  /** The rows of the file, counted by a first pass; undefined for standard input. */
  readonly total: number | undefined;
  /** The rows in file order, read as they are asked for (standard input: once only). */
  rows(): AsyncIterable<ImportRow>;
}

/** The text of a stream, decoded as UTF-8 a piece at a time (a character split between pieces is kept whole). */
async function* textOf(stream: AsyncIterable<unknown>, file: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of stream) {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
      if (text.length > 0) yield text;
    }
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const rest = decoder.end();
  if (rest.length > 0) yield rest;
}

const openText = (file: string, io: CliIo): AsyncGenerator<string> =>
  textOf(file === '-' ? io.stdin : createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }), file);

/** The text read so far (at least up to its first non-blank character, unless it is empty), then the rest. */
async function sniff(texts: AsyncGenerator<string>): Promise<{ head: string; rest: AsyncGenerator<string> }> {
  let head = '';
  while (head.replace(/^\uFEFF/, '').trimStart() === '') {
    const next = await texts.next();
    if (next.done) break;
    head += next.value;
  }
  return { head, rest: texts };
}

async function* withHead(head: string, rest: AsyncIterable<string>): AsyncGenerator<string> {
  if (head.length > 0) yield head;
  yield* rest;
}

function columnsOf(header: CsvRecord | undefined, file: string): string[] {
  if (!header || header.error) throw new CliError(`${file}: the first line must name the columns (${IMPORT_COLUMNS.join(',')})`);
  const columns = header.fields.map((c) => {
    const name = c.trim().toLowerCase();
    return ALIASES[name] ?? name;
  });
  const unknown = columns.filter((c) => !(IMPORT_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0) throw new CliError(`${file}: unknown column ${unknown.map((c) => JSON.stringify(c)).join(', ')} (expected ${IMPORT_COLUMNS.join(',')})`);
  if (!columns.includes('username')) throw new CliError(`${file}: the header has no username column`);
  if (new Set(columns).size !== columns.length) throw new CliError(`${file}: a column is named twice in the header`);
  return columns;
}

/** One CSV record as a row; undefined for a blank line (a trailing newline, spacing), which is no row. */
function csvRow(record: CsvRecord, columns: readonly string[]): ImportRow | undefined {
  if (record.fields.length === 1 && record.fields[0]!.trim() === '' && !record.error) return undefined;
  if (record.error) return { line: record.line, error: record.error };
  if (record.fields.length !== columns.length) return { line: record.line, error: `expected ${columns.length} fields, found ${record.fields.length}` };
  const fields: Record<string, unknown> = {};
  // An empty cell means "not given": CSV cannot tell it from an empty string.
  columns.forEach((column, i) => {
    if (record.fields[i] !== '') fields[column] = record.fields[i];
  });
  return { line: record.line, fields };
}

async function* csvRows(texts: AsyncIterable<string>, file: string): AsyncGenerator<ImportRow> {
  const csv = createCsvParser();
  let columns: string[] | undefined;
  function* take(): Generator<ImportRow> {
    for (let record = csv.next(); record; record = csv.next()) {
      if (columns === undefined) {
        columns = columnsOf(record, file);
        continue;
      }
      const row = csvRow(record, columns);
      if (row) yield row;
    }
  }
  try {
    for await (const text of texts) {
      csv.write(text);
      yield* take();
    }
    csv.end();
    yield* take();
  } catch (error) {
    if (error instanceof CsvRecordTooLongError) throw new CliError(`${file}: ${error.message}`);
    throw error;
  }
  if (columns === undefined) columnsOf(undefined, file);
}

/** One JSON array element as a row, its 1-based position as its line. */
function jsonRow(line: number, item: unknown): ImportRow {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return { line, error: 'expected an object' };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(item as Record<string, unknown>)) {
    const name = ALIASES[key] ?? key;
    if (!(IMPORT_COLUMNS as readonly string[]).includes(name)) return { line, error: `unknown field ${JSON.stringify(key)}` };
    fields[name] = value;
  }
  return { line, fields };
}

async function* jsonRows(texts: AsyncIterable<string>, file: string): AsyncGenerator<ImportRow> {
  const array = createJsonArrayParser();
  try {
    for await (const text of texts) {
      array.write(text);
      for (let element = array.next(); element; element = array.next()) yield jsonRow(element.index, element.value);
    }
    array.end();
    for (let element = array.next(); element; element = array.next()) yield jsonRow(element.index, element.value);
  } catch (error) {
    if (!(error instanceof JsonArrayError)) throw error;
    throw new CliError(error.notJson ? `${file} is not valid JSON: ${error.message}` : `${file}: expected a JSON array of user objects`);
  }
}

/** The rows of one reading of the file. */
async function readRows(file: string, io: CliIo): Promise<AsyncGenerator<ImportRow>> {
  const { head, rest } = await sniff(openText(file, io));
  const ext = extname(file).toLowerCase();
  const json = ext === '.json' || (ext !== '.csv' && head.replace(/^\uFEFF/, '').trimStart().startsWith('['));
  const texts = withHead(head, rest);
  return json ? jsonRows(texts, file) : csvRows(texts, file);
}

/**
 * Opens FILE (or standard input for `-`) for import; throws CliError when the file as a whole
 * is unusable (standard input: when its beginning is). A named file is read through once here.
 *
 * @example
 * const source = await openImportSource('-', io); // JSON when the text starts with "[", else CSV
 */
export async function openImportSource(file: string, io: CliIo): Promise<ImportSource> {
  if (file !== '-') {
    let total = 0;
    const counting = await readRows(file, io);
    for (let row = await counting.next(); !row.done; row = await counting.next()) total++;
    return { total, rows: () => ({ [Symbol.asyncIterator]: () => readRowsLazily(file, io) }) };
  }
  // Standard input: its first row read now, so a bad header is found before the import starts.
  const rows = await readRows(file, io);
  const first = await rows.next();
  let taken = false;
  return {
    total: undefined,
    rows: () => ({
      async *[Symbol.asyncIterator]() {
        if (taken) return;
        taken = true;
        if (first.done) return;
        yield first.value;
        yield* rows;
      },
    }),
  };
}

async function* readRowsLazily(file: string, io: CliIo): AsyncGenerator<ImportRow> {
  yield* await readRows(file, io);
}
