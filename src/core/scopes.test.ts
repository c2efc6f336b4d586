import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidScopeError } from './errors.ts';
import { DEFAULT_SCOPES, grantScopes, parseScope } from './scopes.ts';

const catalog = { ...DEFAULT_SCOPES, 'items:read': 'Read items.' };

test('parseScope splits on spaces, drops empties and duplicates', () => {
  assert.deepEqual(parseScope('me  admin me '), ['me', 'admin']);
  assert.deepEqual(parseScope(''), []);
  assert.deepEqual(parseScope(undefined), []);
});

test('an empty request grants every held scope that is in the catalog', () => {
  assert.deepEqual(grantScopes([], ['me', 'admin', 'retired'], catalog), ['me', 'admin']);
  assert.deepEqual(grantScopes([], [], catalog), []);
});

test('a request grants the held part of it', () => {
  assert.deepEqual(grantScopes(['admin', 'items:read'], ['me', 'items:read'], catalog), ['items:read']);
});

test('a scope outside the catalog, or a request of which nothing is held, is invalid_scope', () => {
  assert.throws(() => grantScopes(['root'], ['me'], catalog), InvalidScopeError);
  assert.throws(() => grantScopes(['admin'], ['me'], catalog), InvalidScopeError);
});

test('scope names are case-sensitive (RFC 6749 §3.3)', () => {
  assert.throws(() => grantScopes(['ME'], ['me'], catalog), InvalidScopeError);
});
