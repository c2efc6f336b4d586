/**
 * Extracting bearer credentials (RFC 6750 §2.1), FastAPI's `OAuth2PasswordBearer` in
 * TypeScript: it only pulls the token out of the header and raises the standard error; the
 * core verifies it.
 *
 * @example
 * parseAuthorization('Bearer abc') // 'abc'; parseAuthorization(undefined) // throws NotAuthenticatedError
 */
import { NotAuthenticatedError } from '../core/errors.ts';

/** Returns the bearer token, or throws NotAuthenticatedError (401, `WWW-Authenticate: Bearer`). */
export function parseAuthorization(header: string | string[] | undefined): string {
  if (typeof header !== 'string') throw new NotAuthenticatedError();
  const space = header.indexOf(' ');
  if (space === -1) throw new NotAuthenticatedError();
  // RFC 7235 §2.1: the auth-scheme is case-insensitive.
  if (header.slice(0, space).toLowerCase() !== 'bearer') throw new NotAuthenticatedError();
  const token = header.slice(space + 1).trim();
  if (token === '') throw new NotAuthenticatedError();
  return token;
}
