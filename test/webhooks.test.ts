/**
 * Webhook delivery (SPEC §9.3), end to end on a running server (SQLite and PostgreSQL) with a
 * real HTTP receiver on 127.0.0.1: every event of a subscribed type is POSTed as its public
 * JSON with Standard Webhooks headers that the `standardwebhooks` package verifies; other
 * types are not sent; a failing receiver gets the message again and the next ones only after
 * it, in order; an attempt that outlasts the timeout is abandoned and retried; after the last
 * retry a message is given up and recorded; a slow receiver never holds up a login; a message
 * exists only for an event that committed. Retry delays, timeout and poll interval are
 * shortened through `startServer`'s `webhookDelivery` (production values: core/webhook-delivery.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { ConflictError } from '../src/core/errors.ts';
import type { PublicEvent } from '../src/core/events.ts';
import type { DeliveryReport } from '../src/core/webhook-delivery.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { createWebhooks } from '../src/core/webhooks.ts';
import { createWebhookStore } from '../src/store/webhook-store.ts';
import { createTestContext, TEST_SECRET, tempDir } from './helpers.ts';
import { scratchDatabase, testDatabases, type ScratchDatabase } from './pg.ts';
import { messageIdOf, startReceiver, verified, waitFor, type Receiver, type Script } from './webhook-receiver.ts';

const RETRY_DELAYS_MS = [100, 200, 400];
const TIMEOUT_MS = 2_000;
const WAIT_MS = 20_000;

for (const database of await testDatabases()) {
  describe(`webhook delivery on ${database.name}`, { skip: database.skip }, () => {
    const dir = tempDir('portcullis-webhooks-');
    let scratch: ScratchDatabase;
    let server: RunningServer;
    let adminToken: string;
    const reports: DeliveryReport[] = [];
    const receivers: Receiver[] = [];

    const api = async (method: string, path: string, body?: unknown, token = adminToken): Promise<{ status: number; body: any }> => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
    };
    const login = async (username: string, password: string): Promise<{ status: number; body: Record<string, string> }> => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', body: new URLSearchParams({ username, password }), signal: AbortSignal.timeout(10_000) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    /** A receiver scripted by `script` and a webhook for it; removed when the test ends. */
    const hook = async (t: { after(fn: () => Promise<void>): void }, events: string[], script?: Script): Promise<{ receiver: Receiver; id: string; secret: string }> => {
      const receiver = await startReceiver(script);
      receivers.push(receiver);
      const created = await api('POST', '/webhooks', { url: receiver.url, events });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      t.after(async () => {
        await api('DELETE', `/webhooks/${created.body.id}`);
        await receiver.close();
      });
      return { receiver, id: created.body.id, secret: created.body.secret };
    };
    const createUser = (username: string, scopes = ['me']) => server.runtime.service.createUser({ username, password: `${username}-password`, scopes });
    const usernameOf = (body: string): unknown => (JSON.parse(body) as PublicEvent).username;

    before(async () => {
      scratch = await scratchDatabase(database.name === 'sqlite' ? `sqlite:${join(dir.path, 'p.db')}` : database.url);
      const env = {
        DATABASE_URL: scratch.url,
        PORTCULLIS_SECRET_KEY: TEST_SECRET,
        PORTCULLIS_ARGON2_MEMORY: '1024',
        PORTCULLIS_ARGON2_TIME: '1',
        PORTCULLIS_ARGON2_PARALLELISM: '1',
        PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: 'true',
      };
      server = await startServer({
        config: loadConfig({ env, flags: { port: 0 } }),
        logger: false,
        webhookDelivery: { retryDelaysMs: RETRY_DELAYS_MS, timeoutMs: TIMEOUT_MS, pollIntervalMs: 250, onAttempt: (r) => reports.push(r) },
      });
      await createUser('root', ['me', 'admin']);
      adminToken = (await login('root', 'root-password')).body.access_token!;
    });

    after(async () => {
      await server?.close();
      for (const receiver of receivers) await receiver.close();
      await scratch?.drop();
      dir.remove();
    });

    test('each event of a subscribed type arrives as its public JSON, signed so that standardwebhooks verifies it; other types are not sent', async (t) => {
      const { receiver, secret } = await hook(t, ['user.created', 'login.succeeded']);
      assert.match(secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
      assert.ok(Buffer.from(secret.slice('whsec_'.length), 'base64').length >= 24, 'at least 24 random bytes');
      await createUser('sig-ann');
      assert.equal((await login('sig-ann', 'wrong-password')).status, 400); // login.failed: not subscribed
      assert.equal((await login('sig-ann', 'sig-ann-password')).status, 200);
      // Queued after the failed login: once it arrives, the failed login would have arrived before it.
      await createUser('sig-bob');
      await waitFor(() => receiver.requests.some((r) => usernameOf(r.body) === 'sig-bob'), WAIT_MS, 'the second user.created');

      const bodies = receiver.requests.map((request) => {
        assert.equal(request.method, 'POST');
        assert.equal(request.headers['content-type'], 'application/json');
        assert.match(messageIdOf(request), /^msg_[0-9a-f-]{36}$/);
        assert.match(String(request.headers['webhook-timestamp']), /^\d{10}$/);
        assert.match(String(request.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
        return verified(secret, request);
      });
      assert.deepEqual(bodies.map((b) => [b.type, b.username]), [['user.created', 'sig-ann'], ['login.succeeded', 'sig-ann'], ['user.created', 'sig-bob']]);
      assert.equal(new Set(receiver.requests.map(messageIdOf)).size, 3, 'one message id per message');
      // The body is the event exactly as GET /events serves it.
      const listed = await api('GET', '/events?limit=200');
      for (const body of bodies) assert.deepEqual(body, listed.body.items.find((e: PublicEvent) => e.id === body.id));
      // A tampered body or another secret does not verify.
      assert.throws(() => verified(secret, { ...receiver.requests[0]!, body: receiver.requests[0]!.body.replace('sig-ann', 'sig-eve') }), /signature/i);
      assert.throws(() => verified('whsec_' + Buffer.alloc(32, 1).toString('base64'), receiver.requests[0]!), /signature/i);
    });

    test('a receiver that fails (500, then 200) gets the message again, and the later ones only after it, in order', async (t) => {
      const { receiver, secret } = await hook(t, ['user.created'], (n) => (n === 0 ? 500 : 200));
      for (const name of ['ord-1', 'ord-2', 'ord-3']) await createUser(name);
      await waitFor(() => receiver.requests.length >= 4, WAIT_MS, 'four requests');
      const ids = receiver.requests.map(messageIdOf);
      assert.equal(ids[0], ids[1], 'the failed message is sent again first');
      assert.deepEqual(receiver.requests.map((r) => verified(secret, r).username), ['ord-1', 'ord-1', 'ord-2', 'ord-3']);
      assert.equal(new Set(ids).size, 3);
      const first = await server.runtime.webhooks.message(ids[0]!);
      assert.equal(first?.attempts, 2);
      assert.equal(first?.lastStatus, 200);
      assert.notEqual(first?.deliveredAt, null);
      assert.ok(reports.some((r) => r.messageId === ids[0] && r.outcome.kind === 'retry' && r.outcome.error === 'HTTP 500'));
    });

    test('a slow receiver holds no login: a login answers while the receiver still holds the previous message', async (t) => {
      await createUser('slow-sam');
      const { receiver } = await hook(t, ['login.succeeded'], (n) => (n === 0 ? 'hold' : 200));
      assert.equal((await login('slow-sam', 'slow-sam-password')).status, 200);
      await waitFor(() => receiver.requests.length >= 1, WAIT_MS, 'the first message to be held');
      const held = receiver.requests[0]!;
      // The next login's message waits behind the held one; the login itself does not wait.
      const second = await login('slow-sam', 'slow-sam-password');
      assert.equal(second.status, 200);
      assert.equal(held.answered, false, 'the login answered before the receiver did');
      receiver.release(held);
      await waitFor(() => new Set(receiver.requests.map(messageIdOf)).size >= 2, WAIT_MS, 'the second message');
      const firstIds = [...new Set(receiver.requests.map(messageIdOf))];
      assert.equal(firstIds[0], messageIdOf(held), 'in order: the held message, then the next');
      assert.equal(usernameOf(receiver.requests.at(-1)!.body), 'slow-sam');
    });

    test('an attempt that outlasts the timeout is abandoned and retried', async (t) => {
      const { receiver, secret } = await hook(t, ['user.created'], (n) => (n === 0 ? 'hold' : 200));
      await createUser('late-lea');
      await waitFor(() => receiver.requests.some((r) => r.answered), WAIT_MS, 'the retry to be answered');
      const [first, retry] = receiver.requests;
      assert.equal(first!.abandoned, true, 'the worker closed the first attempt');
      assert.equal(messageIdOf(first!), messageIdOf(retry!));
      assert.equal(verified(secret, retry!).username, 'late-lea');
      const failed = reports.find((r) => r.messageId === messageIdOf(first!) && r.outcome.kind === 'retry');
      assert.ok(failed && failed.outcome.kind === 'retry');
      assert.match(failed.outcome.error, new RegExp(`no answer within ${TIMEOUT_MS} ms`));
    });

    test('after the last retry a message is given up and recorded, and the next message goes out', async (t) => {
      const attempts = RETRY_DELAYS_MS.length + 1;
      const { receiver, id } = await hook(t, ['user.created'], (n) => (n < attempts ? 503 : 200));
      await createUser('gone-gus');
      await createUser('next-nia');
      // Until the worker has recorded the delivery (its report comes after finishDelivery), the
      // receiver may have answered while the message still counts as pending.
      const nextDelivered = (): boolean => {
        const next = receiver.requests.find((r) => r.answered && usernameOf(r.body) === 'next-nia' && r.response.statusCode === 200);
        return next !== undefined && reports.some((r) => r.messageId === messageIdOf(next) && r.outcome.kind === 'delivered');
      };
      await waitFor(nextDelivered, WAIT_MS, 'the next message, delivered and recorded');
      assert.deepEqual(receiver.requests.map((r) => usernameOf(r.body)), [...Array<string>(attempts).fill('gone-gus'), 'next-nia']);
      const givenUp = await server.runtime.webhooks.message(messageIdOf(receiver.requests[0]!));
      assert.equal(givenUp?.attempts, attempts);
      assert.equal(givenUp?.deliveredAt, null);
      assert.notEqual(givenUp?.doneAt, null);
      assert.equal(givenUp?.lastStatus, 503);
      assert.equal(givenUp?.lastError, 'HTTP 503');
      const listed = (await api('GET', '/webhooks')).body.items.find((w: { id: string }) => w.id === id);
      assert.equal(listed.given_up, 1);
      assert.equal(listed.pending, 0);
      assert.equal(listed.last_error, 'HTTP 503');
    });

    test('a message is queued only for an event that committed: a refused change queues nothing', async (t) => {
      const { receiver } = await hook(t, ['user.created']);
      await createUser('dup-dan');
      await waitFor(() => receiver.requests.length === 1, WAIT_MS, 'user.created of dup-dan');
      const count = async (): Promise<number> => Number((await server.runtime.store.database.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      const before = await count();
      await assert.rejects(createUser('DUP-DAN'), ConflictError);
      assert.equal(await count(), before);
      await createUser('dup-dot');
      await waitFor(() => receiver.requests.length === 2, WAIT_MS, 'user.created of dup-dot');
      assert.deepEqual(receiver.requests.map((r) => usernameOf(r.body)), ['dup-dan', 'dup-dot']);
    });
  });
}

for (const database of await testDatabases()) {
  describe(`the delivery worker on ${database.name}`, { skip: database.skip }, () => {
    test('wakes as soon as its own process queues a message, without waiting for its next poll', async () => {
      const t = await createTestContext({ databaseUrl: database.url });
      const receiver = await startReceiver();
      const webhooks = createWebhooks({ store: createWebhookStore(t.store), secretKey: TEST_SECRET, allowPrivate: true });
      // The first poll runs at start; the next would be in 10 minutes.
      const worker = webhooks.startDelivery({ pollIntervalMs: 600_000 });
      try {
        const { secret } = await webhooks.add({ url: receiver.url, events: ['user.created'] });
        await t.service.createUser({ username: 'prompt-pia', password: 'prompt-pia-password' });
        await waitFor(() => receiver.requests.length === 1, 10_000, 'the message, well before the next poll');
        assert.equal(verified(secret, receiver.requests[0]!).username, 'prompt-pia');
      } finally {
        await worker.stop();
        await receiver.close();
        await t.close();
      }
    });
  });
}
