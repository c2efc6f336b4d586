/**
 * The common-passwords list ships with Portcullis (SPEC §10: ≥ 10,000 entries): a data file
 * beside `src/core/common-passwords.ts`, copied by the build to `dist/core/` so it is in the
 * package (whose `files` are dist, docs, README and LICENSE), with its source and licence
 * named in the file and the README.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { commonPasswords, isCommonPassword } from '../src/core/common-passwords.ts';
import { assertFreshBuild, DIST, ROOT } from './build.ts';

test('the list holds at least 10,000 passwords, each one a new password could be (8+ characters), compared case-insensitively', () => {
  const list = commonPasswords();
  assert.ok(list.size >= 10_000, String(list.size));
  for (const password of list) assert.ok([...password].length >= 8 && password === password.toLowerCase(), password);
  assert.equal(isCommonPassword('password'), true);
  assert.equal(isCommonPassword('PassWord'), true);
  assert.equal(isCommonPassword('qwertyuiop'), true);
  assert.equal(isCommonPassword('correct horse battery'), false);
  assert.equal(list.has('# mit license. copyright (c) 2012-2016 dan wheeler and dropbox, inc. copyright (c) 2021 @zxcvbn-ts'), false, 'comments are not entries');
});

test('the build ships the same file in dist/core, and npm pack puts it in the tarball', async () => {
  assertFreshBuild();
  const source = readFileSync(join(ROOT, 'src', 'core', 'common-passwords.txt'), 'utf8');
  assert.equal(readFileSync(join(DIST, 'core', 'common-passwords.txt'), 'utf8'), source);
  const packed = await new Promise<string>((resolve, reject) =>
    execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
  const [result] = JSON.parse(packed) as Array<{ files: Array<{ path: string }> }>;
  assert.ok(result?.files.some((file) => file.path === 'dist/core/common-passwords.txt'), 'in the tarball');
});

test('the file and the README name its source and its licence', () => {
  const header = readFileSync(join(ROOT, 'src', 'core', 'common-passwords.txt'), 'utf8').split('\n').filter((line) => line.startsWith('#')).join('\n');
  assert.match(header, /@zxcvbn-ts\/language-common/);
  assert.match(header, /MIT License/);
  assert.match(header, /Permission is hereby granted/);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /@zxcvbn-ts\/language-common/);
  assert.match(readme, /MIT/);
});
