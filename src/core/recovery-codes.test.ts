/** Recovery codes: their shape, their entropy, and how typed input is read. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from './recovery-codes.ts';

test('ten distinct codes of four groups of four base32 letters (80 bits each)', () => {
  const codes = generateRecoveryCodes();
  assert.equal(codes.length, RECOVERY_CODE_COUNT);
  assert.equal(new Set(codes).size, RECOVERY_CODE_COUNT);
  for (const code of codes) assert.match(code, /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
});

test('typed codes are read case-insensitively, with or without the dashes', () => {
  assert.equal(normalizeRecoveryCode('abcd-efgh-ijkm-nop2'), 'abcdefghijkmnop2');
  assert.equal(normalizeRecoveryCode('ABCD-EFGH-IJKM-NOP2'), 'abcdefghijkmnop2');
  assert.equal(normalizeRecoveryCode('abcdefghijkmnop2'), 'abcdefghijkmnop2');
  assert.equal(hashRecoveryCode(normalizeRecoveryCode('ABCDefgh-ijkm-nop2')!), hashRecoveryCode('abcdefghijkmnop2'));
});

test('anything else cannot be a code', () => {
  for (const bad of ['', 'abcd-efgh-ijkm', 'abcd efgh ijkm nop2', 'abcd-efgh-ijkm-nop1', 'abcd--efgh-ijkm-nop2', 'abcd-efgh-ijkm-nop2-', 'abcd-efgh-ijkm-nop2x', 'ábcd-efgh-ijkm-nop2', '123456']) {
    assert.equal(normalizeRecoveryCode(bad), undefined, bad);
  }
});
