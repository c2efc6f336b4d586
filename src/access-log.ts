/**
 * The access log (SPEC §9.4): one JSON line per request — `method`, `route`, `status`, `ms`,
 * `address` and the request id (`reqId`) — in place of Fastify's two lines (incoming request,
 * request completed), written through a buffered destination so that logging at `info` costs
 * little of the hot path's throughput (docs/benchmarks.md, "Logging cost").
 *
 * `route` is the route's pattern (`/users/:username`), never the raw URL, so no query string
 * (where a careless client may put a password or a token) and no user-chosen path reaches the
 * line; a request that matched no route is logged as `unmatched`. The same place reports each
 * finished request to the metrics (`onRequestDone`), so there is one hook per request, not two.
 *
 * @example
 * const destination = createLogDestination();
 * const app = Fastify({ logger: { stream: destination }, logController: new AccessLog() });
 */
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';

/** The `route` of a request that matched no route (404s, malformed URLs). */
export const UNMATCHED_ROUTE = 'unmatched';

/** Told about every finished request: its method, route pattern, status and duration in seconds. */
export type RequestDone = (method: string, route: string, status: number, seconds: number) => void;

/**
 * The route pattern a request matched, or `unmatched`: bounded, whatever clients send.
 *
 * @example
 * routeOf(request) // '/users/:username'
 */
export function routeOf(request: FastifyRequest): string {
  // A 404 runs in the not-found handler's context, which has no url.
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}

/**
 * Fastify's per-request log lines, replaced: one access line per request, and error lines
 * that name the route, never the URL.
 *
 * @example
 * Fastify({ logController: new AccessLog((method, route, status, seconds) => histogram.observe(...)) });
 */
export class AccessLog extends LogController {
  readonly #onRequestDone: RequestDone | undefined;
  /**
   * The logger of the access lines: the app's, without its redaction. Every field of an access
   * line is one this class chose (no header, body or URL), so there is nothing to redact, and
   * pino's redaction, whose wildcard paths run on every field, was most of the line's cost.
   */
  #lines: FastifyBaseLogger | undefined;

  constructor(onRequestDone?: RequestDone) {
    super();
    this.#onRequestDone = onRequestDone;
  }

  override incomingRequest(request: FastifyRequest): void {
    // At info the one access line is written when the request completes; this one is for
    // diagnosis only (a no-op function unless the level is debug or trace).
    // (Fastify's stand-in when logging is off has no isLevelEnabled.)
    if ((request.log as Partial<Pick<Logger, 'isLevelEnabled'>>).isLevelEnabled?.('debug')) {
      request.log.debug({ method: request.method, route: routeOf(request) }, 'incoming request');
    }
  }

  override routeNotFound(): void {
    // Nothing: the access line says 404 and `unmatched`.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const route = routeOf(request);
    const ms = reply.elapsedTime;
    const status = reply.statusCode;
    this.#onRequestDone?.(request.method, route, status, ms / 1000);
    if (error) {
      request.log.error({ method: request.method, route, status, ms: Math.round(ms * 100) / 100, address: request.ip, err: error }, 'request failed');
      return;
    }
    const lines = (this.#lines ??= request.server.log.child({}, { redact: [] }));
    lines.info({ reqId: request.id, method: request.method, route, status, ms: Math.round(ms * 100) / 100, address: request.ip }, 'request');
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    // Fastify's own line would carry the request, URL and query string included.
    if (reply.statusCode >= 500) request.log.error({ err: error, route: routeOf(request) }, 'unhandled error');
  }

  override writeHeadError(error: Error, request: FastifyRequest): void {
    request.log.warn({ err: error, route: routeOf(request) }, 'could not write the response headers');
  }
}

/** What `createLogDestination` returns: a pino destination that can be flushed at once. */
export interface LogDestination extends pino.DestinationStream {
  flushSync(): void;
}

/** Bytes buffered before a write: about 40 access lines, one write system call (SonicBoom wants it below its 16 KiB maxWrite). */
const BUFFER_BYTES = 8 * 1024;
/** Bytes held at most while the output does not drain. */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/**
 * A buffered destination for the log (standard output by default): lines are written in
 * chunks of about 8 KiB, at the latest `flushIntervalMs` (1000) after they were logged, and
 * synchronously when the process exits — also on a crash, since pino flushes its destinations
 * on `exit` and `logger.fatal` flushes synchronously. `flushIntervalMs: 0` leaves out the
 * periodic flush. `buffered: false` writes every line at once (for debug and trace, where
 * seeing a line before the next one happens matters more than speed).
 *
 * @example
 * const destination = createLogDestination();
 * const log = pino({ level: 'info' }, destination);
 */
export function createLogDestination(options: { fd?: number; flushIntervalMs?: number; buffered?: boolean } = {}): LogDestination {
  const dest = options.fd ?? 1;
  if (options.buffered === false) return pino.destination({ dest, sync: true });
  // maxLength: a log reader that stopped reading costs lines (dropped), never all the memory.
  return pino.destination({ dest, sync: false, minLength: BUFFER_BYTES, maxLength: MAX_BUFFERED_BYTES, periodicFlush: options.flushIntervalMs ?? 1000 });
}

/**
 * Starts writing out what `destination` holds, without waiting; for the few lines an operator
 * waits for (listening, shutting down). A destination that is gone has nothing to save.
 *
 * @example
 * app.log.info('Portcullis is listening'); flushSoon(destination);
 */
export function flushSoon(destination: LogDestination | undefined): void {
  try {
    (destination as { flush?: () => void } | undefined)?.flush?.();
  } catch {
    // Nothing left to write to.
  }
}
