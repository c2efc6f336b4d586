/**
 * Mail delivery (SPEC §10 "Mail"): requests only write to the outbox and the running service
 * sends it, with retries and growing delays (injected short here). With the SMTP server down
 * a request answers without it and the mail goes out once the server is up; nothing is lost
 * across a restart of the service; with several instances each mail is sent once; a mail the
 * server refuses for good is dropped; queued bodies are sealed. Real parts: the server
 * (`startServer`, and the compiled binary as processes), SQLite and PostgreSQL, and an SMTP
 * server over TCP. Waits are bounded polls, never sleeps taken as proof.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { closedLoopbackPort, runCliWith, tempDir, TEST_SECRET } from './helpers.ts';
import { MAIL_FROM, PUBLIC_URL } from './accounts-fixture.ts';
import { createPgDatabase, testDatabases, type ScratchDatabase } from './pg.ts';
import { spawnServer, type ServerProcess } from './spawn-server.ts';
import { startSmtpCatcher, tokenIn, type SmtpCatcher } from './smtp.ts';

const CHEAP = { PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };
const FAST_RETRIES = { retryDelayMs: () => 100, pollIntervalMs: 50 };

/** Resolves once `probe` holds (polling every 20 ms); rejects after `ms`. */
async function eventually(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const outbox = (store: KyselyStore) => store.database.db.selectFrom('mail_outbox').selectAll().execute();

function register(url: string, username: string, email = `${username}@example.com`): Promise<Response> {
  return fetch(`${url}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'correct horse battery', email }) });
}

/** The environment of a server with registration open and mail to `smtpPort`. */
const accountEnv = (databaseUrl: string, smtpPort: number): Record<string, string> => ({
  ...CHEAP,
  DATABASE_URL: databaseUrl,
  PORTCULLIS_SECRET_KEY: TEST_SECRET,
  PORTCULLIS_REGISTRATION: 'open',
  PORTCULLIS_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  PORTCULLIS_MAIL_FROM: MAIL_FROM,
  PORTCULLIS_PUBLIC_URL: PUBLIC_URL,
  PORTCULLIS_ADDRESS_MAX_REGISTRATIONS: '1000',
});

for (const database of await testDatabases()) {
  describe(`mail delivery on ${database.name}`, { skip: database.skip }, () => {
    let scratch: ScratchDatabase;
    let dir: ReturnType<typeof tempDir>;
    let servers: RunningServer[];
    let catchers: SmtpCatcher[];
    const serve = async (env: Record<string, string>): Promise<RunningServer> => {
      const server = await startServer({ config: loadConfig({ env, flags: { port: 0 } }), logger: false, mailSender: FAST_RETRIES });
      servers.push(server);
      return server;
    };
    const catcher = async (options: Parameters<typeof startSmtpCatcher>[0] = {}): Promise<SmtpCatcher> => {
      const smtp = await startSmtpCatcher(options);
      catchers.push(smtp);
      return smtp;
    };

    before(async () => {
      dir = tempDir();
    });
    after(() => dir.remove());
    const fresh = async (): Promise<string> => {
      servers = [];
      catchers = [];
      if (database.name === 'sqlite') {
        scratch = { url: `sqlite:${join(dir.path, `${Math.random().toString(36).slice(2)}.db`)}`, drop: async () => {} };
      } else {
        scratch = await createPgDatabase(database.url);
      }
      return scratch.url;
    };
    const cleanup = async (): Promise<void> => {
      for (const server of servers) await server.close();
      for (const smtp of catchers) await smtp.close();
      await scratch.drop();
    };

    test('with the SMTP server down a registration answers at once; its mail is retried and goes out once the server is up; queued bodies are sealed', async () => {
      const url = await fresh();
      try {
        const smtpPort = await closedLoopbackPort();
        const server = await serve(accountEnv(url, smtpPort));
        // Nothing listens on the SMTP port: the answer cannot have waited for it.
        const response = await register(server.url, 'outage');
        assert.equal(response.status, 201, await response.text());
        const store = server.runtime.store;
        await eventually(async () => (await outbox(store)).some((row) => Number(row.attempts) >= 2 && row.last_error !== null), 15_000, 'two failed attempts');
        const [row] = await outbox(store);
        assert.equal(row?.recipient, 'outage@example.com');
        assert.equal(row?.subject, 'Confirm your email address');
        assert.match(String(row?.last_error), /ECONNREFUSED/);
        for (const body of [row?.text_body, row?.html_body]) {
          assert.match(String(body), /^pcl-sealed-v1:/, 'sealed at rest');
          assert.doesNotMatch(String(body), /token|https?:/, 'no link readable in the database');
        }
        const smtp = await catcher({ port: smtpPort });
        const [mail] = await smtp.waitForMails(1, 15_000);
        assert.deepEqual(mail?.envelopeTo, ['outage@example.com']);
        assert.equal((await fetch(`${server.url}/verify-email`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: tokenIn(mail!.text) }) })).status, 204);
        await eventually(async () => (await outbox(store)).length === 0, 5_000, 'outbox emptied');
      } finally {
        await cleanup();
      }
    });

    test('nothing is lost across a restart: mail queued while the SMTP server was down is sent by the restarted service', async () => {
      const url = await fresh();
      try {
        const smtpPort = await closedLoopbackPort();
        const first = await serve(accountEnv(url, smtpPort));
        assert.equal((await register(first.url, 'restart-a')).status, 201);
        assert.equal((await fetch(`${first.url}/password-reset/request`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'restart-a' }) })).status, 202);
        await eventually(async () => (await outbox(first.runtime.store)).filter((row) => Number(row.attempts) >= 1).length === 2, 15_000, 'both mails tried');
        await first.close();
        servers = servers.filter((s) => s !== first);
        const smtp = await catcher({ port: smtpPort });
        const second = await serve(accountEnv(url, smtpPort));
        const mails = await smtp.waitForMails(2, 15_000);
        assert.deepEqual(mails.map((m) => m.subject).sort(), ['Confirm your email address', 'Reset your password']);
        const reset = mails.find((m) => m.subject === 'Reset your password')!;
        const done = await fetch(`${second.url}/password-reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: tokenIn(reset.text), new_password: 'a new passphrase here' }) });
        assert.equal(done.status, 204, 'the restarted service honours the link');
      } finally {
        await cleanup();
      }
    });

    test('a mail the SMTP server refuses for good (550) is dropped, not retried', async () => {
      const url = await fresh();
      try {
        const smtp = await catcher({ refuse: ['bounce@example.com'] });
        const server = await serve(accountEnv(url, smtp.port));
        assert.equal((await register(server.url, 'bouncer', 'bounce@example.com')).status, 201);
        assert.equal((await register(server.url, 'fine')).status, 201);
        await smtp.waitForMails(1, 15_000);
        await eventually(async () => (await outbox(server.runtime.store)).length === 0, 15_000, 'outbox emptied');
        await server.mailSender?.flush();
        assert.deepEqual(smtp.mails.map((m) => m.envelopeTo), [['fine@example.com']]);
      } finally {
        await cleanup();
      }
    });

    test('two service processes on one database send each of 30 queued mails exactly once', async () => {
      const url = await fresh();
      const processes: ServerProcess[] = [];
      let store: KyselyStore | undefined;
      try {
        const smtp = await catcher();
        const env = accountEnv(url, smtp.port);
        delete env.DATABASE_URL;
        for (let i = 0; i < 2; i++) processes.push(await spawnServer({ databaseUrl: url, env }));
        // Queued by a third process (no wake-up reaches the servers): both find them by polling, at once.
        store = await openStore(url);
        await store.enqueueMail(Array.from({ length: 30 }, (_, i) => ({ to: `m${i}@example.com`, subject: `mail ${i}`, text: `text ${i}`, html: `<p>${i}</p>` })), Date.now());
        await smtp.waitForMails(30, 30_000);
        await eventually(async () => (await store!.countQueuedMail()) === 0, 15_000, 'outbox emptied');
        // Both processes had their chance at every row; a second copy would have been sent before the delete.
        const recipients = smtp.mails.map((m) => m.envelopeTo.join());
        assert.equal(recipients.length, 30, recipients.join(' '));
        assert.equal(new Set(recipients).size, 30);
      } finally {
        await store?.close();
        for (const p of processes) await p.stop();
        await cleanup();
      }
    });
  });
}

describe('mail queued by the CLI', () => {
  test('a user added with an address by the CLI (no sender of its own) gets the verification mail from the running binary', async () => {
    const dir = tempDir();
    const smtp = await startSmtpCatcher();
    let server: ServerProcess | undefined;
    try {
      const url = `sqlite:${join(dir.path, 'cli.db')}`;
      const env = accountEnv(url, smtp.port);
      const added = await runCliWith(env, ['users', 'add', 'carol', '--email', 'carol@example.com', '--password-stdin'], 'carol-password-1\n');
      assert.equal(added.code, 0, added.stderr);
      delete env.DATABASE_URL;
      server = await spawnServer({ databaseUrl: url, env });
      const [mail] = await smtp.waitForMails(1, 20_000);
      assert.deepEqual(mail?.envelopeTo, ['carol@example.com']);
      assert.ok(mail?.text.includes(`${PUBLIC_URL}/verify-email#token=`));
      // And the binary registers and mails by itself.
      assert.equal((await register(server.url, 'dave')).status, 201);
      const mails = await smtp.waitForMails(2, 20_000);
      assert.deepEqual(mails[1]?.envelopeTo, ['dave@example.com']);
    } finally {
      await server?.stop();
      await smtp.close();
      dir.remove();
    }
  });
});

