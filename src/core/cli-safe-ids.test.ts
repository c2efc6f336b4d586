/**
 * Identifiers Portcullis generates and a user then types into the CLI (`clients show ID`,
 * `keys revoke KID`) never begin with `-`, which the command line would read as an option.
 * Base64url draws `-` first for 1 id in 64; a CI run once failed on such a kid.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateClientId, isClientIdShape } from './clients.ts';
import { generateSigningKey, jwkThumbprint } from './signing-keys.ts';

test('no generated client id begins with "-", and each keeps the generated shape', () => {
  // With a plain base64url draw, 2,000 ids hold a leading dash with probability 1 - (63/64)^2000 ≈ 1 - 2e-14.
  const ids = Array.from({ length: 2000 }, () => generateClientId());
  assert.deepEqual(ids.filter((id) => id.startsWith('-')), []);
  assert.ok(ids.every(isClientIdShape));
  assert.equal(new Set(ids).size, ids.length);
  // The other characters, '-' included, still appear: the draw is not narrowed elsewhere.
  assert.ok(ids.some((id) => id.slice(1).includes('-')));
});

test('no generated signing key has a kid beginning with "-", and the kid is still its RFC 7638 thumbprint', async () => {
  // 1,000 EdDSA keys: a plain draw would hold a dash-leading kid with probability ≈ 1 - 1.5e-7.
  for (let i = 0; i < 1000; i++) {
    const key = await generateSigningKey('EdDSA', 0);
    assert.ok(!key.kid.startsWith('-'), key.kid);
    assert.equal(key.kid, jwkThumbprint(key.publicKey));
  }
});
