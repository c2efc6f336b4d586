/**
 * Keeps URL query strings out of the logs (SPEC §4): a client that sends its password or a
 * token in the URL (`/token?username=…&password=…`, `?access_token=…`, which RFC 6750 §5.3
 * tells clients not to do) must not get it written to a log line. Every query string is
 * replaced by `?[REDACTED]` — in the request log's `url`, in messages (Fastify's and ours),
 * in logged errors and in any string field — since no rule can tell which parameter of an
 * arbitrary URL is secret. The path is kept: it is what an operator reads logs for.
 *
 * @example
 * redactQuery('/token?password=hunter2'); // '/token?[REDACTED]'
 */
import pino, { type LoggerOptions, type SerializedError } from 'pino';

/** What stands in a log line for a redacted value. */
export const REDACTED = '[REDACTED]';

/**
 * The URL without its query string (`?[REDACTED]` in its place, so readers see there was one).
 *
 * @example
 * redactQuery('/users/me?access_token=abc'); // '/users/me?[REDACTED]'
 */
export function redactQuery(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : `${url.slice(0, query)}?${REDACTED}`;
}

// A path (something with a `/`) followed by a query: a request target cannot contain
// whitespace (RFC 9112 §3), so the query runs to the next whitespace.
const QUERY_IN_TEXT = /(\/[^\s?]*)\?\S*/g;

/**
 * Free text (a message, an error's message or stack) with the query string of every URL in
 * it redacted.
 *
 * @example
 * redactQueryStrings('Route GET:/x?token=abc not found'); // 'Route GET:/x?[REDACTED] not found'
 */
export function redactQueryStrings(text: string): string {
  return text.includes('?') ? text.replace(QUERY_IN_TEXT, `$1?${REDACTED}`) : text;
}

const isPlain = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
};

/** Bounds the walk: log objects are small; deeper values are left as they are. */
const MAX_DEPTH = 4;

/** A copy of a plain log object (and its plain objects and arrays) with query strings redacted from its strings. */
function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactQueryStrings(value);
  if (depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1));
  if (!isPlain(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // Node's HTTP parser errors carry the raw bytes received, request line included.
    if (key === 'rawPacket') continue;
    copy[key] = redactDeep(item, depth + 1);
  }
  return copy;
}

/** Fastify's request serializer (lib/logger-pino.js), with the query string redacted from `url`. */
function serializeRequest(request: { method?: string; url?: string; headers?: Record<string, unknown>; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  return {
    method: request.method,
    url: typeof request.url === 'string' ? redactQuery(request.url) : request.url,
    version: request.headers?.['accept-version'],
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

function serializeError(error: Error): SerializedError {
  const serialized = pino.stdSerializers.err(error);
  let plain: unknown;
  try {
    // pino's serialized errors (and their causes) are not plain objects: make them so to walk them.
    plain = JSON.parse(JSON.stringify(serialized)) as unknown;
  } catch {
    plain = { type: serialized.type, message: serialized.message, stack: serialized.stack };
  }
  return redactDeep(plain) as SerializedError;
}

/**
 * The pino options that redact query strings everywhere: serializers for `req`, `err` and the
 * message, and a formatter for every other field. Merged into `loggerOptions`.
 *
 * @example
 * const logger = pino({ level: 'info', ...queryRedaction() });
 */
export function queryRedaction(): Pick<LoggerOptions, 'serializers' | 'formatters'> {
  return {
    serializers: { req: serializeRequest, err: serializeError, msg: (message: unknown) => (typeof message === 'string' ? redactQueryStrings(message) : message) },
    formatters: { log: (object) => redactDeep(object) as Record<string, unknown> },
  };
}
