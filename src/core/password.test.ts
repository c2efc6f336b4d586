import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as bcrypt from '@node-rs/bcrypt';
import { parseHash } from './hash-params.ts';
import { createPasswordHasher, isCurrentArgon2id, type Argon2Params } from './password.ts';

// Real argon2id, with the cheapest parameters the bounds allow a test to use.
const CHEAP: Argon2Params = Object.freeze({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
const OTHER: Argon2Params = Object.freeze({ memoryCost: 2048, timeCost: 1, parallelism: 1 });

const hasher = (params = CHEAP) => createPasswordHasher({ params, concurrency: 2, queue: 16 });

test('hashes with argon2id and the configured parameters, in PHC form', async () => {
  const stored = await hasher().hash('correct horse');
  assert.match(stored, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  assert.ok(isCurrentArgon2id(stored, CHEAP));
  assert.equal(isCurrentArgon2id(stored, OTHER), false);
});

test('verifies the right password and refuses a wrong one, without asking for a re-hash', async () => {
  const h = hasher();
  const stored = await h.hash('correct horse');
  assert.deepEqual(await h.verify(stored, 'correct horse'), { ok: true, needsRehash: false });
  assert.deepEqual(await h.verify(stored, 'correct horsf'), { ok: false, needsRehash: false });
});

test('salts every hash: the same password hashes differently each time', async () => {
  const h = hasher();
  const [a, b] = await Promise.all([h.hash('same password'), h.hash('same password')]);
  assert.notEqual(a, b);
});

test('a hash made with other argon2id parameters verifies and asks for a re-hash, only when the password is right', async () => {
  const stored = await hasher(OTHER).hash('correct horse');
  const h = hasher();
  assert.deepEqual(await h.verify(stored, 'correct horse'), { ok: true, needsRehash: true });
  assert.deepEqual(await h.verify(stored, 'wrong horse'), { ok: false, needsRehash: false });
});

test('an imported bcrypt hash ($2b$ or PHP\'s $2y$) verifies and asks for a re-hash to argon2id', async () => {
  const stored = await bcrypt.hash('correct horse', 4);
  const h = hasher();
  assert.deepEqual(await h.verify(stored, 'correct horse'), { ok: true, needsRehash: true });
  assert.deepEqual(await h.verify(stored.replace(/^\$2b\$/, '$2y$'), 'correct horse'), { ok: true, needsRehash: true });
  assert.equal((await h.verify(stored, 'wrong horse')).ok, false);
});

test('a stored hash with a cost outside the bounds is never run: false, with the reason, after one dummy verification', async () => {
  const h = hasher();
  // Real salt and digest, but t=1000 passes: running it would take the process hostage (SPEC §4).
  const costly = (await h.hash('correct horse')).replace('t=1,', 't=1000,');
  assert.equal(h.isSupportedHash(costly), false);
  const result = await h.verify(costly, 'correct horse');
  assert.equal(result.ok, false);
  assert.match(result.refused ?? '', /t=1000 is over the maximum/);
  assert.deepEqual([...h.verifiedClasses.keys()], ['argon2id$v=19$m=1024,t=1,p=1'], 'only the dummy hash of the policy ran');
  assert.equal(h.verifications, 1);
});

test('a malformed stored hash verifies as false with a reason instead of throwing', async () => {
  const h = hasher();
  for (const stored of ['', 'plaintext', '$argon2id$v=19$m=1024,t=1,p=1$onlysalt', '$2b$04$short']) {
    const result = await h.verify(stored, 'plaintext');
    assert.equal(result.ok, false, stored);
    assert.equal(typeof result.refused, 'string', stored);
  }
});

test('verifyDummy is always false and costs exactly one verification, like a wrong password', async () => {
  const h = hasher();
  assert.equal(await h.verifyDummy('any password'), false);
  assert.equal(h.verifications, 1);
  await h.verify(await h.hash('correct horse'), 'wrong horse');
  assert.equal(h.verifications, 2);
});

test('with hash classes set, an unknown username costs a hash of a class in use, the same one every time', async () => {
  const h = hasher();
  const bcryptParams = parseHash(await bcrypt.hash('x', 4));
  assert.ok(bcryptParams.ok);
  // Every user has a bcrypt hash: an unknown username must cost a bcrypt verification too.
  await h.setHashClasses([{ params: bcryptParams.params, count: 3 }]);
  for (let i = 0; i < 3; i++) assert.equal(await h.verifyDummy('any password', 'nobody'), false);
  assert.deepEqual(Object.fromEntries(h.verifiedClasses), { 'bcrypt$4': 3 });
});
