/**
 * A JSON array read a piece at a time: text is written in as it arrives and the array's
 * elements are taken out one by one, each parsed with `JSON.parse`, so an array of any length
 * is read holding one element and the text not yet read. It accepts exactly the texts
 * `JSON.parse` accepts whose value is an array (RFC 8259): between elements it checks the
 * structure itself (`[`, commas, `]`, whitespace), and each element's text must parse.
 * An element longer than `MAX_JSON_ELEMENT_CHARS` is refused rather than held whole.
 *
 * @example
 * const array = createJsonArrayParser();
 * array.write('[{"username": "ann"}, 2');
 * array.next(); // { index: 1, value: { username: 'ann' } }
 * array.write(']');
 * array.end();
 * array.next(); // { index: 2, value: 2 }
 */

/** The longest element the reader waits for (characters): far above any user object. */
export const MAX_JSON_ELEMENT_CHARS = 1_048_576;

/** The text is not a JSON array: `notJson` when it is no JSON at all (the message says where). */
export class JsonArrayError extends Error {
  constructor(
    message: string,
    readonly notJson: boolean,
  ) {
    super(message);
  }
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; // RFC 8259 §2

/**
 * The reader: `write` pieces of text, take elements with `next` until it answers undefined
 * (the rest needs more text), then `end` after the last piece (which throws when the array
 * is not complete) and take the rest. Throws JsonArrayError as soon as the text cannot be a
 * JSON array.
 *
 * @example
 * const array = createJsonArrayParser();
 * array.write('[1, 2]'); array.end();
 * array.next(); array.next(); array.next(); // { index: 1, value: 1 }, { index: 2, value: 2 }, undefined
 */
export function createJsonArrayParser(): { write(text: string): void; end(): void; next(): { index: number; value: unknown } | undefined } {
  let buffer = '';
  let pos = 0;
  let final = false;
  let started = false;
  // 'start': before `[`; 'value': an element must come; 'valueOrEnd': an element or `]`;
  // 'element': inside one; 'afterElement': `,` or `]` must come; 'after': only whitespace.
  let state: 'start' | 'value' | 'valueOrEnd' | 'element' | 'afterElement' | 'after' | 'notArray' = 'start';
  let index = 0;
  // Inside an element: where it starts, how deep, inside a string, after a backslash.
  let elementStart = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;

  const syntax = (what: string): JsonArrayError => new JsonArrayError(index > 0 ? `${what} (after element ${index})` : what, true);
  const skipSpace = (): void => {
    while (pos < buffer.length && isSpace(buffer.charCodeAt(pos))) pos++;
  };
  /** Drops the text already read, keeping the element in progress. */
  const compact = (): void => {
    const keep = state === 'element' ? elementStart : pos;
    buffer = buffer.slice(keep);
    pos -= keep;
    elementStart -= keep;
  };

  const next = (): { index: number; value: unknown } | undefined => {
    for (;;) {
      switch (state) {
        case 'start': {
          skipSpace();
          if (pos >= buffer.length) return undefined;
          if (buffer[pos] !== '[') {
            state = 'notArray';
            continue;
          }
          pos++;
          state = 'valueOrEnd';
          continue;
        }
        case 'notArray': {
          // Say whether it is JSON at all, as JSON.parse would: only for a text of bounded size.
          if (buffer.length > MAX_JSON_ELEMENT_CHARS) throw new JsonArrayError('expected a JSON array', false);
          if (!final) return undefined;
          try {
            JSON.parse(buffer);
          } catch (error) {
            throw new JsonArrayError((error as Error).message, true);
          }
          throw new JsonArrayError('expected a JSON array', false);
        }
        case 'value':
        case 'valueOrEnd': {
          skipSpace();
          if (pos >= buffer.length) return undefined;
          if (buffer[pos] === ']' && state === 'valueOrEnd') {
            pos++;
            state = 'after';
            continue;
          }
          if (buffer[pos] === ']' || buffer[pos] === ',') throw syntax(`unexpected "${buffer[pos]}"`);
          state = 'element';
          elementStart = pos;
          depth = 0;
          inString = false;
          escaped = false;
          continue;
        }
        case 'element': {
          for (; pos < buffer.length; pos++) {
            const c = buffer[pos];
            if (inString) {
              if (escaped) escaped = false;
              else if (c === '\\') escaped = true;
              else if (c === '"') inString = false;
              continue;
            }
            if (c === '"') inString = true;
            else if (c === '{' || c === '[') depth++;
            else if (c === '}' || (c === ']' && depth > 0)) depth--;
            else if (depth === 0 && (c === ',' || c === ']')) break;
          }
          if (pos >= buffer.length) {
            if (pos - elementStart > MAX_JSON_ELEMENT_CHARS) throw new JsonArrayError(`element ${index + 1} is longer than ${MAX_JSON_ELEMENT_CHARS} characters`, true);
            if (final) throw syntax('unexpected end of the text');
            return undefined;
          }
          const text = buffer.slice(elementStart, pos);
          index++;
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (error) {
            throw new JsonArrayError(`${(error as Error).message} (in element ${index})`, true);
          }
          state = 'afterElement';
          return { index, value };
        }
        case 'afterElement': {
          skipSpace();
          if (pos >= buffer.length) return undefined;
          const c = buffer[pos++];
          if (c === ',') state = 'value';
          else if (c === ']') state = 'after';
          else throw syntax(`unexpected "${c}"`);
          continue;
        }
        case 'after': {
          skipSpace();
          if (pos < buffer.length) throw syntax('unexpected text after the array');
          return undefined;
        }
      }
    }
  };

  return {
    write(text) {
      compact();
      if (!started && text.length > 0) {
        started = true;
        // A leading UTF-8 byte order mark is no part of the JSON text (RFC 8259 §8.1 lets a parser ignore it).
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      buffer += text;
    },
    end() {
      final = true;
    },
    next() {
      const element = next();
      if (element === undefined && final && state !== 'after' && state !== 'notArray') {
        if (state === 'start' && buffer.slice(pos).trim() === '') throw new JsonArrayError('Unexpected end of JSON input', true);
        throw syntax('unexpected end of the text');
      }
      return element;
    },
  };
}
