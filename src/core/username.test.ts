import assert from 'node:assert/strict';
import { test } from 'node:test';
import { passwordProblem, usernameKey, usernameProblem } from './username.ts';

test('usernames are compared case-insensitively after NFKC', () => {
  assert.equal(usernameKey('JohnDoe'), usernameKey('johndoe'));
  assert.equal(usernameKey('ｊｏｈｎ'), 'john');
  assert.equal(usernameKey('ﬁx'), 'fix');
});

test('usernames are 1–128 characters without spaces or control characters', () => {
  assert.equal(usernameProblem('johndoe'), undefined);
  assert.equal(usernameProblem('émile.ß-42'), undefined);
  assert.equal(usernameProblem('x'.repeat(128)), undefined);
  for (const bad of ['', 'x'.repeat(129), 'john doe', 'john\tdoe', 'john\u0000', 'a\u200bb', 'x\u00a0y', 'x\u2028y']) {
    assert.notEqual(usernameProblem(bad), undefined, JSON.stringify(bad));
  }
});

test('new passwords are 8–1024 characters', () => {
  assert.notEqual(passwordProblem('short'), undefined);
  assert.equal(passwordProblem('12345678'), undefined);
  assert.equal(passwordProblem('x'.repeat(1024)), undefined);
  assert.notEqual(passwordProblem('x'.repeat(1025)), undefined);
});
