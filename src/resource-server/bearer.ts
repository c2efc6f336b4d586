/**
 * Taking the access token out of a request (RFC 6750 §2.1), for the adapters and for callers
 * of `verify` in other frameworks.
 *
 * @example
 * const claims = await verifier.verify(bearerToken(request.headers.authorization), ['reports:read']);
 */
import { NotAuthenticatedError } from './errors.ts';

/**
 * The bearer token of an `Authorization` header value; NotAuthenticatedError (401,
 * `WWW-Authenticate: Bearer`) when there is none, another scheme, or an empty token.
 *
 * @example
 * bearerToken('Bearer eyJ…') // 'eyJ…'; bearerToken(undefined) throws NotAuthenticatedError
 */
export function bearerToken(header: string | string[] | undefined): string {
  if (typeof header !== 'string') throw new NotAuthenticatedError();
  const space = header.indexOf(' ');
  // RFC 7235 §2.1: the auth-scheme is case-insensitive.
  if (space === -1 || header.slice(0, space).toLowerCase() !== 'bearer') throw new NotAuthenticatedError();
  const token = header.slice(space + 1).trim();
  if (token === '') throw new NotAuthenticatedError();
  return token;
}
