import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emailAddressProblem } from './email-address.ts';
import { choosablePasswordIssues } from './password-policy.ts';

const types = (password: string, username = 'jane', email: string | null = 'jane@example.com') => choosablePasswordIssues(password, { username, email }, ['body', 'password']).map((i) => i.type);

test('a self-chosen password: long enough, not common, not the username or email (case-insensitively, after NFKC and case folding)', () => {
  assert.deepEqual(types('correct horse battery'), []);
  assert.deepEqual(types('short'), ['value_error']);
  assert.deepEqual(types('sunshine'), ['common_password']);
  assert.deepEqual(types('SunShine'), ['common_password']);
  assert.deepEqual(types('STRASSE-2000', 'straße-2000'), ['password_equals_username']);
  assert.deepEqual(types('ｊａｎｅｄｏｅ１２', 'janedoe12'), ['password_equals_username']);
  assert.deepEqual(types('JANE@EXAMPLE.COM'), ['password_equals_email']);
  assert.deepEqual(types('jane@example.com', 'jane', null), []);
  assert.deepEqual(types('nul\u0000password'), ['value_error']);
});

test('a registration address is one mailbox as an HTML email field accepts it', () => {
  for (const ok of ['jane@example.com', 'j.doe+tag@sub.example.co.uk', "o'neil@example.com", 'a@b']) assert.equal(emailAddressProblem(ok), undefined, ok);
  for (const bad of ['', 'jane', 'jane@', '@example.com', 'a@b@c', 'jane doe@example.com', 'a@example.com,b@example.com', '<a@example.com>', 'jane@exa_mple.com', 'jäne@example.com', `${'x'.repeat(245)}@example.com`]) {
    assert.ok(emailAddressProblem(bad), bad);
  }
});
