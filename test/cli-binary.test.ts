/**
 * The real `portcullis` binary (package `bin`), spawned as a user's shell would run it: proves
 * that the compiled dist/bin.js starts under plain `node` (no TypeScript loader), reads a piped
 * password and exits with the right codes. Everything else about the CLI is tested in-process (cli.test.ts).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtBin } from './build.ts';
import { tempDir } from './helpers.ts';

const BIN = builtBin();
/** Bound on one run of the binary (the CI box is shared). */
const RUN_TIMEOUT_MS = 60_000;

/** Runs the binary with `stdin` piped in; kills it (and fails) if it outlives the bound. */
function run(args: readonly string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portcullis ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(stdin);
  });
}

test('the portcullis binary prints its help and adds a user from a piped password', { timeout: RUN_TIMEOUT_MS * 4 }, async () => {
  const dir = tempDir('portcullis-bin-');
  try {
    const env = {
      DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`,
      PORTCULLIS_ARGON2_MEMORY: '1024',
      PORTCULLIS_ARGON2_TIME: '1',
      PORTCULLIS_ARGON2_PARALLELISM: '1',
    };
    const help = await run(['--help'], env);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: portcullis /);
    for (const command of ['serve', 'migrate', 'users']) assert.match(help.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));

    const added = await run(['users', 'add', 'johndoe', '--full-name', 'John Doe', '--password-stdin'], env, 'secret-password\n');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, 'created user johndoe (scopes: me)\n');

    const listed = await run(['users', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), [{ username: 'johndoe', email: null, full_name: 'John Doe', disabled: false, scopes: ['me'] }]);

    // A usage mistake exits non-zero with a message, not a stack trace.
    const wrong = await run(['users', 'add', 'mallory', '--password', 'secret-password'], env);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /unknown option '--password'/);
    assert.doesNotMatch(wrong.stderr, /\n\s+at /);
  } finally {
    dir.remove();
  }
});
