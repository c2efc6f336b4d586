/**
 * One gate for every route's input (SPEC §4): a NUL character or a lone surrogate anywhere in
 * the path parameters, the query string or a parsed body (form fields, JSON strings and JSON
 * property names, at any depth) is refused before a handler — and so before any database —
 * sees it. PostgreSQL cannot store NUL in `text` and would answer the query with an error (a
 * 500); SQLite would store it; neither is what the client meant. Refused as the route's other
 * client errors are: 400 `invalid_request` on the OAuth endpoints (RFC 6749 §5.2), 422 in
 * FastAPI's shape elsewhere.
 *
 * @example
 * app.addHook('preHandler', textGuard); // the Portcullis plugin does this for every route
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequestError, ValidationError } from '../core/errors.ts';
import { textProblem } from '../core/text.ts';

/** Where in a request, as a FastAPI `loc`, and what is wrong there. */
export interface TextFinding {
  loc: (string | number)[];
  /** The end of a sentence: "must not contain NUL characters". */
  problem: string;
  /** The field's name is at fault, not its value. */
  inName: boolean;
}

/**
 * The first string in `value` (walked without recursion, so a deeply nested JSON body cannot
 * overflow the stack) that cannot be stored, or undefined. Buffers and streams
 * are skipped.
 *
 * @example
 * findUnstorableText({ user: { name: 'a\u0000' } }, ['body']) // { loc: ['body', 'user', 'name'], problem: 'must not contain NUL characters', inName: false }
 */
export function findUnstorableText(value: unknown, loc: (string | number)[]): TextFinding | undefined {
  const stack: { value: unknown; loc: (string | number)[] }[] = [{ value, loc }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item.value === 'string') {
      const problem = textProblem(item.value);
      if (problem) return { loc: item.loc, problem, inName: false };
    } else if (Array.isArray(item.value)) {
      item.value.forEach((v, i) => stack.push({ value: v, loc: [...item.loc, i] }));
    } else if (isPlainObject(item.value)) {
      for (const [key, v] of Object.entries(item.value)) {
        const problem = textProblem(key);
        if (problem) return { loc: [...item.loc, key], problem, inName: true };
        stack.push({ value: v, loc: [...item.loc, key] });
      }
    }
  }
  return undefined;
}

/** Objects made of fields: parsed bodies, query and params objects (whatever their prototype). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  return !ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer) && typeof (value as { pipe?: unknown }).pipe !== 'function';
}

/** True when `value` holds nothing to check: absent, or an object or array with no enumerable key. */
function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value !== 'object') return false;
  // for…in sees every enumerable key, inherited ones too: a superset of what the walk visits.
  for (const _key in value) return false;
  return true;
}

/**
 * The hook (preHandler: after every body parser and schema, before the handler): checks path
 * parameters, query and body; fails the request with the route's kind of client error on the
 * first string that cannot be stored. Callback style, not async, and a request with no
 * parameters, query or body (`GET /users/me`) is passed on without a walk: most requests are
 * such, and a promise per request was a measurable part of their cost (issue 14).
 *
 * @example
 * app.addHook('preHandler', textGuard); // GET /users/a%00b → 422 [{"loc": ["path", "username"], …}]
 */
export function textGuard(request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void {
  if (isEmpty(request.params) && isEmpty(request.query) && isEmpty(request.body)) return done();
  const found =
    findUnstorableText(request.params, ['path']) ?? findUnstorableText(request.query, ['query']) ?? findUnstorableText(request.body, ['body']);
  if (!found) return done();
  if (request.routeOptions.config?.oauthErrors === true) {
    if (found.inName) return done(new InvalidRequestError(`A parameter name ${found.problem}`));
    return done(new InvalidRequestError(`Parameter ${JSON.stringify(String(found.loc.at(-1)).slice(0, 64))} ${found.problem}`));
  }
  done(new ValidationError([{ loc: found.loc, msg: `${found.inName ? 'Field name' : 'String'} ${found.problem}`, type: 'value_error' }]));
}
