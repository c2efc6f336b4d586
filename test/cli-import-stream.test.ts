/**
 * `users import` streams its input (SPEC §6; src/cli/import-source.ts): 20,000 rows go in
 * with never more than one batch of rows held at once, from CSV and from JSON; standard
 * input is imported while it is still arriving; a named file that turns out unusable halfway
 * changes nothing, as when it was read whole; and the hash classes of the users imported are
 * counted as they go in (store/hash-classes.ts).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BATCH, importUsers, openImportSource, type ImportSummary } from '../src/cli/import.ts';
import type { CliIo } from '../src/cli/io.ts';
import { runCli } from '../src/cli/main.ts';
import { loadConfig } from '../src/config.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { tempDir, TEST_SECRET } from './helpers.ts';

const BCRYPT = '$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW';
const ARGON2ID = '$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc';
const ROWS = 20_000;

function io(stdin = new PassThrough()): CliIo & { err(): string } {
  const stderr = Object.assign(new PassThrough(), { isTTY: false });
  const chunks: Buffer[] = [];
  stderr.on('data', (c: Buffer) => chunks.push(c));
  return { stdin, stdout: new PassThrough(), stderr, env: {}, err: () => Buffer.concat(chunks).toString() };
}

/** Row i of a generated file: every 1,000th is bad, every 2,500th repeats an earlier username. */
function generated(i: number): { username: string; email: string; password_hash: string; scopes: string } {
  const username = i % 2_500 === 1_234 ? `stream${i - 1_000}` : `stream${i}`;
  return { username, email: `${username}@example.com`, password_hash: i % 1_000 === 999 ? 'not-a-hash' : i % 10 === 0 ? BCRYPT : ARGON2ID, scopes: 'me' };
}
const EXPECTED_BAD = ROWS / 1_000 + ROWS / 2_500;

describe('users import streams its input', () => {
  let dir: ReturnType<typeof tempDir>;
  let env: Record<string, string>;
  let runtime: Runtime;
  const userCount = async (): Promise<number> => runtime.store.countUsers();
  before(async () => {
    dir = tempDir('portcullis-import-stream-');
    env = { DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`, PORTCULLIS_SECRET_KEY: TEST_SECRET, PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };
    runtime = await openRuntime(loadConfig({ env }));
  });
  after(async () => {
    await runtime.close();
    dir.remove();
  });

  const importFile = async (path: string): Promise<{ summary: ImportSummary; mostHeld: number; stderr: string }> => {
    const streams = io();
    let mostHeld = 0;
    const summary = await importUsers(runtime, await openImportSource(path, streams), streams, { onRowsHeld: (held) => (mostHeld = Math.max(mostHeld, held)) });
    return { summary, mostHeld, stderr: streams.err() };
  };

  test('20,000 CSV rows go in holding at most one batch of rows at once', { timeout: 120_000 }, async () => {
    const lines = ['username,email,full_name,password_hash,scopes'];
    for (let i = 0; i < ROWS; i++) {
      const row = generated(i);
      // Every 7th row has a quoted name over two lines: records and file lines differ.
      lines.push(`${row.username},${row.email},${i % 7 === 0 ? '"Name\nover two lines"' : ''},"${row.password_hash}",${row.scopes}`);
    }
    const path = join(dir.path, 'users.csv');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const before = await userCount();
    const { summary, mostHeld, stderr } = await importFile(path);
    assert.deepEqual(summary, { added: ROWS - EXPECTED_BAD, skipped: 0, bad: EXPECTED_BAD });
    assert.ok(mostHeld <= BATCH, `held ${mostHeld} rows at once`);
    assert.ok(mostHeld >= BATCH / 2, 'the batches were full ones');
    assert.equal(await userCount(), before + ROWS - EXPECTED_BAD);
    // Bad rows by their file line: row i starts on line 2 + i + (rows before it with a two-line name).
    const lineOf = (i: number): number => 2 + i + Math.ceil(i / 7);
    assert.match(stderr, new RegExp(`^line ${lineOf(999)}: password_hash: `, 'm'));
    assert.match(stderr, new RegExp(`^line ${lineOf(1_234)}: duplicate username "stream234" \\(also on line ${lineOf(234)}\\)`, 'm'));
    const counts = Object.fromEntries(((await runtime.store.hashClassCounts?.()) ?? []).map((c) => [c.prefix, c.count]));
    assert.equal(counts['$2b$12$'], (await runtime.store.database.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('password_hash', '=', BCRYPT).executeTakeFirstOrThrow()).n);
  });

  test('20,000 JSON elements go in holding at most one batch of rows at once, and a re-run skips them all', { timeout: 120_000 }, async () => {
    const path = join(dir.path, 'users.json');
    writeFileSync(path, JSON.stringify(Array.from({ length: ROWS }, (_, i) => ({ ...generated(i), username: `json-${generated(i).username}` })), null, 1));
    const first = await importFile(path);
    assert.deepEqual(first.summary, { added: ROWS - EXPECTED_BAD, skipped: 0, bad: EXPECTED_BAD });
    assert.ok(first.mostHeld <= BATCH, `held ${first.mostHeld} rows at once`);
    assert.match(first.stderr, /^line 1000: password_hash: /m);
    const again = await importFile(path);
    assert.deepEqual(again.summary, { added: 0, skipped: ROWS - EXPECTED_BAD, bad: EXPECTED_BAD });
    assert.ok(again.mostHeld <= BATCH);
  });

  test('standard input is imported while it is still arriving', { timeout: 60_000 }, async () => {
    const stdin = new PassThrough();
    const streams = io(stdin);
    const before = await userCount();
    stdin.write('username,password_hash\n');
    for (let i = 0; i < 3 * BATCH; i++) stdin.write(`piped${i},"${ARGON2ID}"\n`);
    const importing = importUsers(runtime, await openImportSource('-', streams), streams);
    // The first batches are in the database before the input has ended.
    const deadline = Date.now() + 30_000;
    while ((await userCount()) < before + 2 * BATCH) {
      assert.ok(Date.now() < deadline, 'the first batches went in while stdin was open');
      await new Promise((r) => setTimeout(r, 20));
    }
    stdin.end(`piped-last,"${BCRYPT}"\n`);
    assert.deepEqual(await importing, { added: 3 * BATCH + 1, skipped: 0, bad: 0 });
  });

  test('a named file unusable halfway imports nothing; on standard input the rows before the fault are in', async () => {
    const cut = JSON.stringify(Array.from({ length: 1_200 }, (_, i) => ({ username: `cut${i}`, password_hash: BCRYPT }))).slice(0, -40);
    const path = join(dir.path, 'cut.json');
    writeFileSync(path, cut);
    const before = await userCount();
    const streams = io();
    await assert.rejects(openImportSource(path, streams), /cut\.json is not valid JSON: unexpected end of the text/);
    assert.equal(await userCount(), before, 'nothing imported');
    // Through the CLI as a user runs it: exit code 1 and the reason.
    const stderr = new PassThrough();
    const err: Buffer[] = [];
    stderr.on('data', (c: Buffer) => err.push(c));
    assert.equal(await runCli(['users', 'import', path], { stdin: new PassThrough(), stdout: new PassThrough(), stderr, env }), 1);
    assert.match(Buffer.concat(err).toString(), /is not valid JSON/);
    assert.equal(await userCount(), before, 'nothing imported');

    const stdin = new PassThrough();
    stdin.end(cut);
    const piped = io(stdin);
    await assert.rejects(importUsers(runtime, await openImportSource('-', piped), piped), /- is not valid JSON/);
    assert.equal(await userCount(), before + 1_000, 'the two full batches before the fault');
  });
});
