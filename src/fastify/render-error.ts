/**
 * The one error renderer: turns any error into the response the SPEC promises. Portcullis
 * errors carry their status, headers and `detail`; on OAuth endpoints (route config
 * `oauthErrors`) the body also carries RFC 6749 §5.2's `error` and `error_description`.
 * Fastify's own client errors (bad JSON, wrong content type, body too large, validation)
 * become 4xx with a clear `detail`; anything else is logged and answered 500 without details.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PortcullisError, StoreUnavailableError, ValidationError, type ValidationIssue } from '../core/errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Render errors with RFC 6749 §5.2 fields (token and revocation endpoints). */
    oauthErrors?: boolean;
  }
}

// FastAPI's names for the request parts in `loc`.
const PART_NAMES: Record<string, string> = { querystring: 'query', params: 'path', headers: 'header' };

function validationIssues(error: FastifyError): ValidationIssue[] {
  const context = error.validationContext ?? 'body';
  const where = PART_NAMES[context] ?? context;
  return (error.validation ?? []).map((v) => {
    const path = v.instancePath.split('/').filter(Boolean);
    const params = v.params as { missingProperty?: string; additionalProperty?: string };
    // Name the offending field in `loc`, as FastAPI does for missing and extra fields.
    if (v.keyword === 'additionalProperties') {
      return { loc: [where, ...path, String(params.additionalProperty)], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' };
    }
    const missing = v.keyword === 'required' ? [String(params.missingProperty)] : [];
    return {
      loc: [where, ...path, ...missing].map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
      msg: v.keyword === 'required' ? 'Field required' : (v.message ?? 'Invalid value'),
      type: v.keyword === 'required' ? 'missing' : v.keyword,
    };
  });
}

/**
 * Answers an error as Portcullis does: the status, headers and `{"detail": …}` body of a `PortcullisError` (plus the OAuth error fields on /token), 503 for a database outage, 500 without internals otherwise. For apps that pass `errorHandler: false` and keep their own handler.
 *
 * @example
 * app.setErrorHandler((error, request, reply) => (isMine(error) ? reply.send(myBody(error)) : renderError(error, request, reply)));
 */
export function renderError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const oauth = request.routeOptions.config?.oauthErrors === true;
  let e = error as FastifyError;
  if (!(e instanceof PortcullisError) && e?.validation) e = new ValidationError(validationIssues(e)) as unknown as FastifyError;
  // A database error that escaped the store's own methods (a query of the app's own): the
  // service knows its store's driver errors (`AuthService.isUnavailable`).
  if (!(e instanceof PortcullisError) && request.server.portcullis?.isUnavailable(e)) {
    e = new StoreUnavailableError() as unknown as FastifyError;
  }

  if (e instanceof PortcullisError) {
    if (e.logWarning) request.log.warn(e.logWarning.fields, e.logWarning.msg);
    reply.code(e.statusCode).headers(e.headers());
    const body: Record<string, unknown> = { detail: e.detail };
    if (oauth && e.oauthError) return reply.send({ error: e.oauthError, error_description: e.message, ...body, ...e.oauthFields() });
    return reply.send(body);
  }

  const status = typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
  if (status === 500) {
    request.log.error({ err: e }, 'unhandled error');
    return reply.code(500).send({ detail: 'Internal Server Error' });
  }
  const detail = clientMessage(e);
  if (oauth) return reply.code(status).send({ error: 'invalid_request', error_description: detail, detail });
  return reply.code(status).send({ detail });
}

function clientMessage(e: FastifyError): string {
  switch (e.code) {
    case 'FST_ERR_BAD_URL':
      return 'Malformed URL';
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return 'A path segment is too long';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request body is too large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported Content-Type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'Request body is empty';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return e.message;
    default:
      // Fastify's client errors have safe messages; strip the code prefix.
      return String(e.message ?? 'Bad Request').replace(/^FST_\w+: /, '');
  }
}
