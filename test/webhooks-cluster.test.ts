/**
 * Webhook delivery across processes (SPEC §9.3): nothing is lost across a restart — a message
 * that failed while the receiver was down is delivered by the next start of the compiled
 * server; a lease held by a worker that died ends and another worker sends the message; and
 * two instances on one PostgreSQL database deliver each message exactly once between them in
 * a run without failures.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAuthService } from '../src/core/auth-service.ts';
import { loadConfig } from '../src/config.ts';
import { openRuntime } from '../src/runtime.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { createWebhookStore } from '../src/store/webhook-store.ts';
import { CHEAP_ARGON2, closedLoopbackPort, runCliWith, TEST_ISSUER, TEST_SECRET, tempDir } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip, scratchDatabase, testDatabases, type ScratchDatabase } from './pg.ts';
import { postForm, SERVER_ENV, spawnServer, type ServerProcess } from './spawn-server.ts';
import { messageIdOf, startReceiver, verified, waitFor, type Receiver } from './webhook-receiver.ts';

const ALLOW_PRIVATE = { PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: 'true' };

/** `webhooks add` through the CLI; returns the id and the secret it printed. */
async function addWebhook(env: Record<string, string>, url: string, events?: string): Promise<{ id: string; secret: string }> {
  const result = await runCliWith(env, ['webhooks', 'add', url, ...(events ? ['--events', events] : [])]);
  assert.equal(result.code, 0, result.stderr);
  return { id: /added webhook (wh_\S+)/.exec(result.stdout)![1]!, secret: /(whsec_\S+)/.exec(result.stdout)![1]! };
}

const messages = (store: KyselyStore) => store.database.db.selectFrom('webhook_deliveries').selectAll().orderBy('id').execute();

describe('a message that failed while the receiver was down', () => {
  const dir = tempDir('portcullis-webhooks-restart-');
  const env = { ...SERVER_ENV, ...ALLOW_PRIVATE, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}` };
  let server: ServerProcess | undefined;
  let receiver: Receiver | undefined;
  let store: KyselyStore | undefined;
  after(async () => {
    await server?.stop();
    await receiver?.close();
    await store?.close();
    dir.remove();
  });

  test('is delivered after a restart of the server, once the receiver is back', async () => {
    const port = await closedLoopbackPort();
    const { secret } = await addWebhook(env, `http://127.0.0.1:${port}/hook`, 'login.succeeded');
    assert.equal((await runCliWith(env, ['users', 'add', 'rita', '--password-stdin'], 'rita-password\n')).code, 0);
    server = await spawnServer({ databaseUrl: env.DATABASE_URL, env: { ...ALLOW_PRIVATE } });
    assert.equal((await postForm(`${server.url}/token`, { username: 'rita', password: 'rita-password' })).status, 200);
    store = await openStore(env.DATABASE_URL);
    await waitFor(async () => (await messages(store!)).some((m) => Number(m.attempts) >= 1), 20_000, 'a failed attempt to be recorded');
    const [failed] = await messages(store);
    assert.match(String(failed?.last_error), /ECONNREFUSED/);
    assert.equal(failed?.delivered_at, null);
    assert.equal(await server.stop(), 0);
    server = undefined;

    receiver = await startReceiver(() => 200, port);
    server = await spawnServer({ databaseUrl: env.DATABASE_URL, env: { ...ALLOW_PRIVATE } });
    // The first retry is 5 s after the failure (the production schedule): bounded well above it.
    await waitFor(() => receiver!.requests.length >= 1, 30_000, 'the message after the restart');
    const body = verified(secret, receiver.requests[0]!);
    assert.deepEqual([body.type, body.username], ['login.succeeded', 'rita']);
    assert.equal(messageIdOf(receiver.requests[0]!), failed?.id);
    await waitFor(async () => (await messages(store!))[0]?.delivered_at !== null, 10_000, 'the delivery to be recorded');
  });
});

for (const database of await testDatabases()) {
  describe(`a lease held by a worker that died, on ${database.name}`, { skip: database.skip }, () => {
    const dir = tempDir('portcullis-webhooks-lease-');
    let scratch: ScratchDatabase;
    before(async () => {
      scratch = await scratchDatabase(database.name === 'sqlite' ? `sqlite:${join(dir.path, 'p.db')}` : database.url);
    });
    after(async () => {
      await scratch?.drop();
      dir.remove();
    });

    test('ends, and another worker sends the message; the dead one can no longer record an outcome', async () => {
      const runtime = await openRuntime(loadConfig({ env: { ...SERVER_ENV, ...ALLOW_PRIVATE, DATABASE_URL: scratch.url } }));
      const receiver = await startReceiver();
      const store = createWebhookStore(runtime.store);
      try {
        const { webhook, secret } = await runtime.webhooks.add({ url: receiver.url });
        const messageId = await runtime.webhooks.sendTest(webhook.id);
        // A worker claims it with a short lease, then "dies" (never records anything).
        const [claimed] = await store.claimDeliveries({ owner: 'dead-worker', now: Date.now(), leaseMs: 300, limit: 4 });
        assert.equal(claimed?.message.id, messageId);
        assert.deepEqual(await store.claimDeliveries({ owner: 'other', now: Date.now(), leaseMs: 300, limit: 4 }), [], 'leased: nobody else gets it');
        const worker = runtime.webhooks.startDelivery({ pollIntervalMs: 100 });
        try {
          await waitFor(() => receiver.requests.length === 1, 10_000, 'the message once the lease ended');
          assert.equal(verified(secret, receiver.requests[0]!).type, 'webhook.test');
          await waitFor(async () => (await runtime.webhooks.message(messageId))?.deliveredAt !== null, 10_000, 'the delivery to be recorded');
        } finally {
          await worker.stop();
        }
        assert.equal(await store.finishDelivery(messageId, 'dead-worker', { kind: 'retry', at: Date.now(), nextAttemptAt: Date.now(), status: 500, error: 'late' }), false);
        assert.equal((await runtime.webhooks.message(messageId))?.attempts, 1);
      } finally {
        await receiver.close();
        await runtime.close();
      }
    });
  });
}

const pg = await pgServerOrSkip();

describe('two instances on one PostgreSQL database', { skip: pg.skip }, () => {
  let database: ScratchDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let store: KyselyStore;
  let receiver: Receiver;
  const hooks: Array<{ id: string; secret: string; path: string }> = [];

  before(async () => {
    database = await createPgDatabase(pg.url!);
    receiver = await startReceiver();
    const env = { ...SERVER_ENV, ...ALLOW_PRIVATE, DATABASE_URL: database.url };
    // Three webhooks (every event type), so the instances have several heads to compete for.
    for (const path of ['a', 'b', 'c']) hooks.push({ ...(await addWebhook(env, `${receiver.url}/${path}`)), path: `/hook/${path}` });
    [a, b] = await Promise.all([spawnServer({ databaseUrl: database.url, env: ALLOW_PRIVATE }), spawnServer({ databaseUrl: database.url, env: ALLOW_PRIVATE })]);
    store = await openStore(database.url);
  });

  after(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await receiver?.close();
    await store?.close();
    await database?.drop();
    assert.deepEqual(codes, [0, 0]);
  });

  test('each message is delivered exactly once by the pair, to every webhook, in order', async () => {
    // Events from a third process (this one) and from logins on both instances at once.
    const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2 });
    const users = ['uma', 'vic', 'wyn', 'xia', 'yul'];
    for (const username of users) await service.createUser({ username, password: `${username}-password` });
    // One login at a time per instance (more from one address at once would be shed, SPEC §4), both instances at once.
    for (const username of users) {
      const logins = await Promise.all([a, b].map((instance) => postForm(`${instance.url}/token`, { username, password: `${username}-password` })));
      assert.deepEqual(logins.map((r) => r.status), [200, 200]);
    }

    const expected = hooks.length * (users.length * 3); // user.created and two login.succeeded per user
    await waitFor(async () => {
      const rows = await messages(store);
      return rows.length === expected && rows.every((m) => m.delivered_at !== null);
    }, 60_000, `${expected} messages delivered`);
    // Proving a second copy never comes needs a window: two poll intervals of both instances.
    await new Promise((r) => setTimeout(r, 5_000));

    const rows = await messages(store);
    assert.ok(rows.every((m) => Number(m.attempts) === 1), 'one attempt each');
    const ids = receiver.requests.map(messageIdOf);
    assert.equal(ids.length, expected, 'as many requests as messages');
    assert.equal(new Set(ids).size, expected, 'no message twice');
    assert.deepEqual([...ids].sort(), rows.map((m) => m.id));
    for (const hook of hooks) {
      const received = receiver.requests.filter((r) => r.path === hook.path);
      assert.equal(received.length, expected / hooks.length);
      const bodies = received.map((request) => verified(hook.secret, request));
      assert.deepEqual(received.map(messageIdOf).sort(), rows.filter((m) => m.webhook_id === hook.id).map((m) => m.id));
      // In order per webhook: the users were created one after the other by one process.
      assert.deepEqual(bodies.filter((body) => body.type === 'user.created').map((body) => body.username), users);
    }
  });
});
