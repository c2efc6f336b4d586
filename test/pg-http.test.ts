/**
 * The HTTP suite on PostgreSQL. Every HTTP test builds its app through createTestContext,
 * which gives each test a database of its own on the server named by
 * PORTCULLIS_TEST_DATABASE_URL (test/pg.ts). `npm test` runs the suite on SQLite; this file
 * runs its core HTTP files once more, each in a child test runner pointed at PostgreSQL, so
 * both databases are proven without doubling the whole run. (To run everything on
 * PostgreSQL: `npm run test:postgres`.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { pgServerOrSkip } from './pg.ts';

/** The token endpoint, bearer checks, refresh rotation, revocation, sessions, admin API, NUL input, username folding and audit events. */
const HTTP_FILES = ['token', 'bearer', 'refresh', 'revocation', 'sessions', 'admin-users', 'login-limiter', 'nul-input', 'usernames', 'audit-events'];

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const pg = await pgServerOrSkip();
const alreadyOnPostgres = /^postgres(ql)?:/.test(process.env.PORTCULLIS_TEST_DATABASE_URL ?? '');
const skip = pg.skip || (alreadyOnPostgres && 'the whole suite already runs on PostgreSQL (PORTCULLIS_TEST_DATABASE_URL)');

/** Runs one test file in a child runner on PostgreSQL; resolves with its exit code and output. */
function runOnPostgres(file: string, serverUrl: string): Promise<{ code: number | null; output: string }> {
  // NODE_TEST_CONTEXT marks a process as a test runner's child; without removing it, the
  // nested runner would refuse to run files ("run() is being called recursively").
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsxCli, '--test', '--test-reporter=tap', file], {
      cwd: root,
      env: { ...env, PORTCULLIS_TEST_DATABASE_URL: serverUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('the HTTP suite on PostgreSQL', { skip }, () => {
  for (const name of HTTP_FILES) {
    const file = `test/${name}.test.ts`;
    test(`${file} passes on PostgreSQL`, { skip: !existsSync(`${root}/${file}`) && `${file} does not exist` }, async () => {
      const { code, output } = await runOnPostgres(file, pg.url!);
      const failures = output.split('\n').filter((l) => /^\s*not ok /.test(l) && !/# (SKIP|TODO)/.test(l));
      assert.equal(code, 0, `${file} failed on PostgreSQL:\n${failures.join('\n')}\n${output.slice(-4000)}`);
      assert.match(output, /^# pass [1-9]/m, `${file} ran no test on PostgreSQL`);
    });
  }
});
