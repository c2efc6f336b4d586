import assert from 'node:assert/strict';
import { test } from 'node:test';
import { passwordProblem } from './password-rules.ts';

test('new passwords are 8–1024 characters', () => {
  assert.notEqual(passwordProblem('short'), undefined);
  assert.equal(passwordProblem('12345678'), undefined);
  assert.equal(passwordProblem('x'.repeat(1024)), undefined);
  assert.notEqual(passwordProblem('x'.repeat(1025)), undefined);
});

test('passwords with a lone surrogate or a NUL are refused', () => {
  assert.equal(passwordProblem('secret-pass\ud800'), 'Password must be well-formed Unicode (no lone surrogates)');
  assert.equal(passwordProblem('secret\u0000pass'), 'Password must not contain NUL characters');
  assert.equal(passwordProblem('pässwörd-😀-ok'), undefined);
});
