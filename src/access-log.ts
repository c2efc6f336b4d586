/**
 * The access log (SPEC §9.4): one JSON line per request — `method`, `route`, `status`, `ms`,
 * `address` and the request id (`reqId`) — in place of Fastify's two lines (incoming request,
 * request completed), written through a buffered destination (log-destination.ts) so that
 * logging at `info` costs little of the hot path's throughput (docs/benchmarks.md, "Logging cost").
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
import type { Logger } from 'pino';

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
    // Above info (warn: the bench, quiet deployments) and without metrics, a request that went
    // well has nothing to report: skip building a line nobody writes.
    const lines = (this.#lines ??= request.server.log.child({}, { redact: [] }));
    if (!error && this.#onRequestDone === undefined && (lines as Partial<Pick<Logger, 'isLevelEnabled'>>).isLevelEnabled?.('info') === false) return;
    const route = routeOf(request);
    const ms = reply.elapsedTime;
    const status = reply.statusCode;
    this.#onRequestDone?.(request.method, route, status, ms / 1000);
    if (error) {
      request.log.error({ method: request.method, route, status, ms: Math.round(ms * 100) / 100, address: request.ip, err: error }, 'request failed');
      return;
    }
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
