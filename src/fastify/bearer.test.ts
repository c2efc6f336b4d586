import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotAuthenticatedError } from '../core/errors.ts';
import { parseAuthorization } from './bearer.ts';

/** Asserts that the header is refused as "no credentials" (RFC 6750 §3.1: no error code). */
function assertNotAuthenticated(header: string | string[] | undefined): void {
  assert.throws(
    () => parseAuthorization(header),
    (error: unknown) => {
      assert.ok(error instanceof NotAuthenticatedError, `${JSON.stringify(header)}: ${String(error)}`);
      assert.equal(error.statusCode, 401);
      assert.deepEqual(error.headers(), { 'www-authenticate': 'Bearer' });
      return true;
    },
  );
}

test('returns the token of a Bearer header exactly as sent', () => {
  assert.equal(parseAuthorization('Bearer eyJ.abc-_.x~+/='), 'eyJ.abc-_.x~+/=');
});

test('accepts the Bearer scheme in any letter case (RFC 7235 §2.1)', () => {
  for (const scheme of ['bearer', 'BEARER', 'bEaReR']) assert.equal(parseAuthorization(`${scheme} tok`), 'tok');
});

test('drops the whitespace around the token', () => {
  assert.equal(parseAuthorization('Bearer   tok  '), 'tok');
});

test('refuses a missing or repeated Authorization header as not authenticated', () => {
  assertNotAuthenticated(undefined);
  assertNotAuthenticated(['Bearer a', 'Bearer b']);
});

test('refuses another scheme, a scheme that only starts with "bearer", and a bare scheme as not authenticated', () => {
  for (const header of ['Basic am9objpwdw==', 'Bearerx tok', 'Token tok', 'Bearer', 'tok', '']) assertNotAuthenticated(header);
});

test('refuses a Bearer header whose token is empty or only whitespace as not authenticated', () => {
  for (const header of ['Bearer ', 'Bearer    ', 'Bearer \t ']) assertNotAuthenticated(header);
});
