import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkClientSecret } from './client-secret-check.ts';
import { generateClientSecret, hashClientSecret } from './clients.ts';
import type { ClientRecord } from './store.ts';

function clientWith(secret: string | null): ClientRecord {
  return {
    clientId: 'AAAAAAAAAAAAAAAAAAAAAA',
    name: 'reports-api',
    type: secret === null ? 'public' : 'confidential',
    secretHash: secret === null ? null : hashClientSecret(secret),
    grants: [],
    scopes: [],
    audiences: [],
    firstParty: false,
    createdAt: 0,
    updatedAt: 0,
  };
}

test('accepts the secret, again and again, and refuses any other — also one of the same length after a success', () => {
  const secret = generateClientSecret();
  const record = clientWith(secret);
  for (let i = 0; i < 3; i++) assert.equal(checkClientSecret(record, secret), true, `attempt ${i}`);
  const sameLength = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
  assert.equal(checkClientSecret(record, sameLength), false);
  assert.equal(checkClientSecret(record, secret.slice(1)), false);
  assert.equal(checkClientSecret(record, ''), false);
  assert.equal(checkClientSecret(record, 'x'.repeat(1024 * 1024)), false, 'a 1 MB secret is refused before hashing');
  assert.equal(checkClientSecret(record, secret), true, 'the right one still passes');
});

test('a rotated secret fails at once: the client read again is a new record, and a record changed in place is not trusted', () => {
  const old = generateClientSecret();
  const record = clientWith(old);
  assert.equal(checkClientSecret(record, old), true);
  const next = generateClientSecret();
  // What the authenticator's cache hands out after the change: a new object.
  const reread = { ...record, secretHash: hashClientSecret(next) };
  assert.equal(checkClientSecret(reread, old), false);
  assert.equal(checkClientSecret(reread, next), true);
  // Belt and braces: even the same object, rehashed in place, does not keep the old secret.
  record.secretHash = hashClientSecret(next);
  assert.equal(checkClientSecret(record, old), false);
  assert.equal(checkClientSecret(record, next), true);
});

test('a public client has no secret to match', () => {
  assert.equal(checkClientSecret(clientWith(null), generateClientSecret()), false);
});
