/**
 * A CSV reader after RFC 4180: comma-separated fields, double-quoted fields may hold commas,
 * line breaks and doubled quotes (`""`), records end with CRLF or LF, a leading UTF-8 BOM is
 * ignored. Each record carries the file line it starts on, so errors can name it (a quoted
 * field may span lines). A malformed record is reported with its line and skipped; the rest
 * are still read.
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

/** Splits CSV text into records. Blank lines are kept as records of one empty field. */
export function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let i = 0;
  let line = 1;
  while (i < s.length) {
    const start = line;
    const fields: string[] = [];
    let error: string | undefined;
    let field = '';
    for (;;) {
      if (s[i] === '"') {
        // A quoted field: up to the next lone quote, "" standing for one quote.
        i++;
        let closed = false;
        while (i < s.length) {
          const c = s[i] as string;
          if (c === '"') {
            if (s[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (!closed) {
          error = 'a quoted field is not closed';
          fields.push(field);
          break;
        }
        if (i < s.length && s[i] !== ',' && s[i] !== '\n' && !(s[i] === '\r' && s[i + 1] === '\n')) {
          error = 'unexpected text after a closing quote';
        }
      }
      // The unquoted rest of the field (after a quoted part only when malformed).
      while (i < s.length && s[i] !== ',' && s[i] !== '\n' && !(s[i] === '\r' && s[i + 1] === '\n')) {
        field += s[i];
        i++;
      }
      fields.push(field);
      field = '';
      if (s[i] === ',') {
        i++;
        continue;
      }
      // End of record: CRLF, LF or end of text.
      if (s[i] === '\r') i++;
      if (s[i] === '\n') {
        i++;
        line++;
      }
      break;
    }
    records.push(error === undefined ? { line: start, fields } : { line: start, fields, error });
  }
  return records;
}
