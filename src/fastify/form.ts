/**
 * The form bodies of the token and revocation endpoints (RFC 6749 §3.2, §2.3): the parsers an
 * OAuth endpoint registers (urlencoded or multipart, at most 16 KiB, anything else
 * `invalid_request`), the fields read from them, and the client credentials from the form or
 * HTTP Basic.
 *
 * @example
 * parseForm(Buffer.from('grant_type=password&username=johndoe')) // { grant_type: 'password', username: 'johndoe' }
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ClientCredentials } from '../core/client-auth.ts';
import { InvalidRequestError, PortcullisError } from '../core/errors.ts';
import { textProblem } from '../core/text.ts';
import { renderError } from './render-error.ts';

/** The largest form body the token and revocation endpoints read (16 KiB). */
export const FORM_BODY_LIMIT = 16 * 1024;
const UNSUPPORTED = Symbol('unsupported content type');
/**
 * Parameters that may appear more than once: RFC 8707 §2, "multiple `resource` parameters may
 * be used to indicate that the requested token is intended to be used at multiple resources".
 * Every other parameter still appears at most once (RFC 6749 §3.2).
 */
export const REPEATABLE_PARAMETERS: ReadonlySet<string> = new Set(['resource']);


const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Strict `application/x-www-form-urlencoded` parsing (RFC 6749 §3.2 and Appendix B): the body
 * must be UTF-8, percent-escapes must be well formed, and a parameter must not appear twice
 * (except those of `REPEATABLE_PARAMETERS`, whose repeats are collected in an array, as
 * multipart bodies give them). Lenient parsers guess at such input; an auth server should
 * refuse it with `invalid_request`.
 */
export function parseForm(body: Buffer): Record<string, string | string[]> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new InvalidRequestError('Request body is not valid UTF-8');
  }
  const fields: Record<string, string | string[]> = Object.create(null);
  if (text === '') return fields;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const name = formDecode(rawName);
    const value = formDecode(rawValue);
    if (name === undefined || value === undefined) throw new InvalidRequestError('Request body has a malformed percent-encoding');
    const earlier = fields[name];
    if (earlier !== undefined && REPEATABLE_PARAMETERS.has(name)) {
      fields[name] = [...(Array.isArray(earlier) ? earlier : [earlier]), value];
      continue;
    }
    if (Object.hasOwn(fields, name)) {
      // RFC 6749 §3.2: parameters MUST NOT be included more than once.
      throw new InvalidRequestError(`Parameter ${JSON.stringify(name.slice(0, 64))} is repeated`);
    }
    fields[name] = value;
  }
  return fields;
}

/** RFC 7617 §2 / RFC 4648 §4: the base64 alphabet, padding only at the end. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Form-urlencoding undone (RFC 6749 §2.3.1, Appendix B), or undefined when malformed. */
function formDecode(text: string): string | undefined {
  // Tokens and ids are plain text: nothing to undo, no copy made (the hot path of /introspect).
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/**
 * HTTP Basic client credentials (RFC 6749 §2.3.1: client id and secret are form-encoded, then
 * base64, RFC 7617). Returns undefined when the header is absent or another scheme; a
 * malformed one (not base64, not UTF-8, no colon, bad percent-encoding, NUL) is
 * `invalid_request` — a clear 400, never a lookup.
 */
export function parseBasicCredentials(header: string | undefined): { clientId: string; clientSecret: string } | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  // RFC 7235 §2.1: the scheme is case-insensitive.
  if (space === -1 || header.slice(0, space).toLowerCase() !== 'basic') return undefined;
  // A resource server sends the same header with every introspection: decode it once. Only
  // well-formed headers of our size are remembered (a malformed one throws below, every time),
  // at most PARSED_BASIC_LIMIT of them, and the answer is frozen, so no caller can change it.
  const known = parsedBasic.get(header);
  if (known !== undefined) return known;
  const parsed = Object.freeze(decodeBasicCredentials(header.slice(space + 1)));
  if (header.length <= PARSED_BASIC_MAX_LENGTH) {
    if (parsedBasic.size >= PARSED_BASIC_LIMIT) parsedBasic.clear();
    parsedBasic.set(header, parsed);
  }
  return parsed;
}

/** Well-formed Basic headers already decoded (bounded in count and size: cleared when full). */
const parsedBasic = new Map<string, { clientId: string; clientSecret: string }>();
const PARSED_BASIC_LIMIT = 256;
const PARSED_BASIC_MAX_LENGTH = 1024;

/** The id and secret of a Basic header's credentials part; `invalid_request` when malformed. */
function decodeBasicCredentials(credentials: string): { clientId: string; clientSecret: string } {
  const encoded = credentials.trim();
  if (!BASE64.test(encoded)) throw new InvalidRequestError('Malformed HTTP Basic credentials: not base64');
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    throw new InvalidRequestError('Malformed HTTP Basic credentials: not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon === -1) throw new InvalidRequestError('Malformed HTTP Basic credentials');
  const clientId = formDecode(decoded.slice(0, colon));
  const clientSecret = formDecode(decoded.slice(colon + 1));
  if (clientId === undefined || clientSecret === undefined) throw new InvalidRequestError('Malformed HTTP Basic credentials');
  // The client id is stored with the session: no NUL may reach the database (SPEC §4).
  const problem = textProblem(clientId) ?? textProblem(clientSecret);
  if (problem) throw new InvalidRequestError(`HTTP Basic credentials ${problem}`);
  return { clientId, clientSecret };
}

/**
 * Reads the form fields, refusing repeated or non-text fields. The repeatable parameters
 * (`REPEATABLE_PARAMETERS`) are left out: `formValues` reads them.
 */
export function formBody(request: FastifyRequest): Record<string, string> {
  const body = request.body as unknown;
  if (body === UNSUPPORTED || body === undefined || body === null || typeof body !== 'object') {
    throw new InvalidRequestError('Content-Type must be application/x-www-form-urlencoded or multipart/form-data');
  }
  const fields: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(body)) {
    if (REPEATABLE_PARAMETERS.has(name)) {
      formValues(request, name);
      continue;
    }
    if (typeof value !== 'string') throw new InvalidRequestError(`Parameter ${JSON.stringify(name.slice(0, 64))} must be a single text value`);
    fields[name] = value;
  }
  return fields;
}

/**
 * Every value of a repeatable parameter (`REPEATABLE_PARAMETERS`), in the order sent; [] when
 * absent. A value that is not text (a file part) is `invalid_request`.
 *
 * @example
 * formValues(request, 'resource') // ['https://a.example', 'https://b.example']
 */
export function formValues(request: FastifyRequest, name: string): string[] {
  const body = request.body as Record<string, unknown> | undefined;
  if (body === undefined || body === null || typeof body !== 'object' || !Object.hasOwn(body, name)) return [];
  const value = body[name];
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  if (!values.every((v): v is string => typeof v === 'string')) throw new InvalidRequestError(`Parameter ${JSON.stringify(name.slice(0, 64))} must be text`);
  return values;
}

/** Registers the form parsers for an OAuth endpoint's encapsulated context. */
export async function registerFormParsers(app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
    try {
      done(null, parseForm(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fieldNameSize: 100, fieldSize: FORM_BODY_LIMIT, fields: 16, files: 0, parts: 16, headerPairs: 100 },
  });
  // Any other type is read (bounded) and refused by the handler with invalid_request.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT }, (_request, _body, done) => done(null, UNSUPPORTED));
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  });
  // A body the parsers choke on (e.g. multipart without a boundary) is the client's mistake.
  app.addHook('preHandler', async (request) => {
    bodyParsed.add(request);
  });
  app.setErrorHandler((error, request, reply) => {
    const status = (error as { statusCode?: unknown }).statusCode;
    const clientError = typeof status === 'number' && status >= 400 && status < 500;
    if (!(error instanceof PortcullisError) && !clientError && !bodyParsed.has(request)) {
      return renderError(new InvalidRequestError('Malformed form body'), request, reply);
    }
    return renderError(error, request, reply);
  });
}

const bodyParsed = new WeakSet<FastifyRequest>();

/**
 * Client credentials from HTTP Basic (`client_secret_basic`) or the form
 * (`client_secret_post`), never both (RFC 6749 §2.3: "MUST NOT use more than one
 * authentication method in each request") — both at once is `invalid_request`.
 */
export function clientCredentials(request: FastifyRequest, fields: Record<string, string>): ClientCredentials {
  const basic = parseBasicCredentials(request.headers.authorization);
  if (basic && (fields.client_id !== undefined || fields.client_secret !== undefined)) {
    throw new InvalidRequestError('Client credentials must be sent in the body or in the Authorization header, not both');
  }
  if (basic) return { clientId: basic.clientId, clientSecret: basic.clientSecret, method: 'client_secret_basic' };
  const clientId = fields.client_id ?? null;
  const clientSecret = fields.client_secret ?? null;
  return { clientId, clientSecret, method: clientId === null && clientSecret === null ? null : 'client_secret_post' };
}
