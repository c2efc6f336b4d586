/**
 * Managing webhooks (SPEC §9.3): the admin API (`GET/POST /webhooks`, `DELETE /webhooks/{id}`,
 * scope `admin`, the secret only in the POST answer), the CLI (`webhooks add|list|remove|test`),
 * bad input (a clear 4xx or CLI error, nothing stored), the SSRF rules (targets that are not
 * public refused when added and again when sent, unless PORTCULLIS_WEBHOOK_ALLOW_PRIVATE), the
 * secret sealed at rest, and pruning of done messages. Also the leftovers of the same issue:
 * `key.rotated` when the key ring rotates by itself at start-up, and the CLI's disabling
 * keeping `user_disabled` as its `session.ended` reason (the admin API's is `admin`:
 * test/audit-events.test.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createManualClock } from '../src/core/clock.ts';
import { EVENT_TYPES } from '../src/core/events.ts';
import { runPrune } from '../src/core/housekeeping.ts';
import { createWebhooks, type Webhooks } from '../src/core/webhooks.ts';
import { openRuntime } from '../src/runtime.ts';
import { createWebhookStore } from '../src/store/webhook-store.ts';
import { createTestContext, login, runCliWith, TEST_SECRET, tempDir, type TestContext } from './helpers.ts';
import { testDatabases } from './pg.ts';
import { messageIdOf, startReceiver, verified } from './webhook-receiver.ts';

const DAY = 86_400_000;
const CHEAP_ENV = { PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1', PORTCULLIS_SECRET_KEY: TEST_SECRET };

/** The app with `/webhooks`, over a test context, and an admin's token. */
async function webhookApp(t: TestContext, allowPrivate: boolean): Promise<{ app: FastifyInstance; webhooks: Webhooks; token: string }> {
  const webhooks = createWebhooks({ store: createWebhookStore(t.store), secretKey: TEST_SECRET, allowPrivate });
  const app = await buildApp({ service: t.service, logger: false, webhooks });
  if (!(await t.store.findUserByUsername('root'))) await t.service.createUser({ username: 'root', password: 'root-password', scopes: ['me', 'admin'] });
  const token = String((await login(app, 'root', 'root-password')).body.access_token);
  return { app, webhooks, token };
}

const rowCount = async (t: TestContext, table: 'webhooks' | 'webhook_deliveries'): Promise<number> =>
  Number((await t.store.database.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

for (const database of await testDatabases()) {
  describe(`webhooks admin API on ${database.name}`, { skip: database.skip }, () => {
    let t: TestContext;
    let app: FastifyInstance;
    let token: string;
    const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, bearer = token) =>
      app.inject({ method, url, headers: { authorization: `Bearer ${bearer}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });

    before(async () => {
      t = await createTestContext({ databaseUrl: database.url });
      ({ app, token } = await webhookApp(t, true));
    });
    after(async () => {
      await app.close();
      await t.close();
    });

    test('POST /webhooks answers 201 with the secret once; GET lists it without; DELETE removes it', async () => {
      const created = await call('POST', '/webhooks', { url: 'https://hooks.example.com/a?x=1', events: ['login.locked', 'session.ended'] });
      assert.equal(created.statusCode, 201, created.body);
      const body = created.json();
      assert.match(body.id, /^wh_[A-Za-z0-9_-]{22}$/);
      assert.equal(created.headers.location, `/webhooks/${body.id}`);
      assert.deepEqual([body.url, body.events], ['https://hooks.example.com/a?x=1', ['login.locked', 'session.ended']]);
      assert.match(body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      // The secret is stored sealed: it appears nowhere in the database.
      const row = await t.store.database.db.selectFrom('webhooks').selectAll().where('id', '=', body.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(row).includes(body.secret.slice('whsec_'.length)), 'not stored in the clear');
      assert.match(row.secret, /^v1\./);

      const all = await call('POST', '/webhooks', { url: 'https://hooks.example.com/all' });
      assert.equal(all.statusCode, 201);
      assert.deepEqual(all.json().events, [], 'no events named: all of them');

      const listed = await call('GET', '/webhooks');
      assert.equal(listed.statusCode, 200);
      const items = listed.json().items as Array<Record<string, unknown>>;
      assert.deepEqual(items.map((w) => w.id), [body.id, all.json().id]);
      for (const item of items) {
        assert.equal('secret' in item, false);
        assert.deepEqual(Object.keys(item).sort(), ['created_at', 'events', 'given_up', 'id', 'last_delivered_at', 'last_error', 'pending', 'url']);
      }
      assert.ok(!listed.body.includes('whsec_'));

      assert.equal((await call('DELETE', `/webhooks/${body.id}`)).statusCode, 204);
      assert.equal((await call('DELETE', `/webhooks/${body.id}`)).statusCode, 404);
      assert.deepEqual((await call('DELETE', '/webhooks/wh_unknown')).json(), { detail: 'Webhook not found' });
      assert.deepEqual((await call('GET', '/webhooks')).json().items.map((w: { id: string }) => w.id), [all.json().id]);
      assert.equal((await call('DELETE', `/webhooks/${all.json().id}`)).statusCode, 204);
    });

    test('needs the admin scope: 401 without a token, 403 for a user without admin', async () => {
      await t.service.createUser({ username: 'plain', password: 'plain-password', scopes: ['me'] });
      const plain = String((await login(app, 'plain', 'plain-password')).body.access_token);
      for (const [method, url, payload] of [['GET', '/webhooks'], ['POST', '/webhooks', { url: 'https://hooks.example.com/x' }], ['DELETE', '/webhooks/wh_aaaaaaaaaaaaaaaaaaaaaa']] as const) {
        assert.equal((await app.inject({ method, url, ...(payload ? { payload } : {}) })).statusCode, 401, `${method} ${url}`);
        assert.equal((await call(method, url, payload, plain)).statusCode, 403, `${method} ${url}`);
      }
      assert.equal(await rowCount(t, 'webhooks'), 0);
    });

    test('bad input is a clear 4xx and stores nothing', async () => {
      const kept = await call('POST', '/webhooks', { url: 'https://hooks.example.com/kept' });
      assert.equal(kept.statusCode, 201);
      const cases: Array<[unknown, number, RegExp]> = [
        [{}, 422, /url/],
        [{ url: 42 }, 422, /string/],
        [{ url: '' }, 422, /url/],
        [{ url: 'ftp://hooks.example.com/' }, 422, /http:\/\/ or https:\/\//],
        [{ url: 'javascript:alert(1)' }, 422, /http:\/\/ or https:\/\//],
        [{ url: 'not a url' }, 422, /absolute http/],
        [{ url: 'http://' }, 422, /absolute http/],
        [{ url: `https://hooks.example.com/${'a'.repeat(2100)}` }, 422, /2048/],
        [{ url: 'https://user:pass@hooks.example.com/' }, 422, /username or password/],
        [{ url: 'https://hooks.example.com/#x' }, 422, /fragment/],
        [{ url: 'https://hooks.exa\u0000mple.com/' }, 422, /NUL/],
        [{ url: 'https://hooks.example.com/\ud800' }, 422, /surrogate/],
        [{ url: 'https://hooks.example.com/kept' }, 409, /registered already/],
        [{ url: 'https://HOOKS.example.com:443/kept' }, 409, /registered already/],
        [{ url: 'https://hooks.example.com/e', events: ['nope'] }, 422, /allowed values|must be equal to one of/],
        [{ url: 'https://hooks.example.com/e', events: ['login.locked', 'login.locked'] }, 422, /duplicate/],
        [{ url: 'https://hooks.example.com/e', events: [...EVENT_TYPES, 'login.locked'] }, 422, /fewer than|more than/],
        [{ url: 'https://hooks.example.com/e', events: 'login.locked' }, 422, /array/],
        [{ url: 'https://hooks.example.com/e', events: [1] }, 422, /string/],
        [{ url: 'https://hooks.example.com/e', secret: 'whsec_mine' }, 422, /Extra inputs are not permitted/],
      ];
      for (const [payload, status, detail] of cases) {
        const response = await call('POST', '/webhooks', payload);
        assert.equal(response.statusCode, status, `${JSON.stringify(payload).slice(0, 80)}: ${response.body}`);
        assert.match(response.body, detail, JSON.stringify(payload).slice(0, 80));
      }
      const huge = await app.inject({ method: 'POST', url: '/webhooks', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify({ url: `https://h.example.com/${'a'.repeat(70_000)}` }) });
      assert.equal(huge.statusCode, 413);
      const notJson = await app.inject({ method: 'POST', url: '/webhooks', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: '{"url": ' });
      assert.equal(notJson.statusCode, 400);
      assert.equal((await call('DELETE', `/webhooks/${'x'.repeat(100)}`)).statusCode, 422);
      assert.equal((await call('DELETE', '/webhooks/wh_%00')).statusCode, 422);
      assert.equal(await rowCount(t, 'webhooks'), 1, 'nothing stored but the first');
      assert.equal((await call('DELETE', `/webhooks/${kept.json().id}`)).statusCode, 204);
    });

    test('the OpenAPI document describes the webhook operations with the admin scope', async () => {
      const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, Record<string, unknown>>> };
      for (const [path, method] of [['/webhooks', 'get'], ['/webhooks', 'post'], ['/webhooks/{id}', 'delete']] as const) {
        const operation = doc.paths[path]?.[method];
        assert.ok(operation, `${method} ${path}`);
        assert.deepEqual(operation.tags, ['admin']);
        assert.deepEqual(operation.security, [{ OAuth2PasswordBearer: ['admin'] }]);
        const responses = operation.responses as Record<string, unknown>;
        assert.ok(responses['401'] && responses['403'], `${method} ${path} documents 401 and 403`);
      }
      assert.ok(doc.paths['/webhooks']?.post?.requestBody);
    });
  });
}

describe('webhook targets that are not public (SSRF)', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext();
  });
  after(() => t.close());

  test('are refused with 422 when added, unless allowed; public addresses are accepted', async () => {
    const { app, token } = await webhookApp(t, false);
    const add = (url: string) => app.inject({ method: 'POST', url: '/webhooks', headers: { authorization: `Bearer ${token}` }, payload: { url } });
    for (const url of [
      'http://127.0.0.1:9000/hook',
      'http://localhost:9000/hook',
      'http://2130706433/hook',
      'http://0.0.0.0/',
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://[::ffff:192.168.0.1]/',
      'http://[64:ff9b::a00:1]/',
      'http://[2002:a00:1::]/',
      'https://224.0.0.1/',
    ]) {
      const response = await add(url);
      assert.equal(response.statusCode, 422, `${url}: ${response.body}`);
      assert.match(response.json().detail[0].msg, /not a public address.*PORTCULLIS_WEBHOOK_ALLOW_PRIVATE=true/, url);
      assert.deepEqual(response.json().detail[0].loc, ['body', 'url']);
    }
    assert.equal(await rowCount(t, 'webhooks'), 0);
    // Literal public addresses need no lookup.
    assert.equal((await add('http://93.184.215.14/hook')).statusCode, 201);
    assert.equal((await add('https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook')).statusCode, 201);
    await app.close();

    const allowed = await webhookApp(t, true);
    const response = await allowed.app.inject({ method: 'POST', url: '/webhooks', headers: { authorization: `Bearer ${allowed.token}` }, payload: { url: 'http://127.0.0.1:9000/hook' } });
    assert.equal(response.statusCode, 201, response.body);
    await allowed.app.close();
  });

  test('are refused again when a message is sent: the address connected to is checked (DNS rebinding)', async () => {
    const receiver = await startReceiver();
    try {
      // Added while allowed (or while the name still resolved elsewhere) …
      const permissive = createWebhooks({ store: createWebhookStore(t.store), secretKey: TEST_SECRET, allowPrivate: true });
      const strict = createWebhooks({ store: createWebhookStore(t.store), secretKey: TEST_SECRET, allowPrivate: false });
      for (const url of [`http://localhost:${receiver.port}/by-name`, `http://127.0.0.1:${receiver.port}/by-address`]) {
        const { webhook } = await permissive.add({ url });
        const messageId = await strict.sendTest(webhook.id, { actor: 'test' });
        // … a worker that does not allow it refuses to connect, and records why.
        const report = await strict.deliverNow(messageId);
        assert.equal(report?.outcome.kind, 'retry', url);
        assert.match((report?.outcome as { error: string }).error, /not a public address/, url);
        const message = await strict.message(messageId);
        assert.equal(message?.attempts, 1);
        assert.equal(message?.lastStatus, null);
      }
      assert.equal(receiver.requests.length, 0, 'nothing reached the receiver');
    } finally {
      await receiver.close();
    }
  });
});

describe('npx portcullis webhooks', () => {
  const dir = tempDir('portcullis-webhooks-cli-');
  const env = { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`, PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: 'true' };
  const cli = (argv: readonly string[], extra: Record<string, string> = {}) => runCliWith({ ...env, ...extra }, argv);
  const list = async (): Promise<Array<Record<string, unknown>>> => {
    const result = await cli(['webhooks', 'list', '--json']);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Array<Record<string, unknown>>;
  };
  after(() => dir.remove());

  test('add prints the id and the secret once; list shows the webhook without it; test sends a signed webhook.test; remove drops it', async () => {
    const receiver = await startReceiver();
    try {
      const added = await cli(['webhooks', 'add', receiver.url, '--events', 'login.locked, user.created']);
      assert.equal(added.code, 0, added.stderr);
      const id = /added webhook (wh_\S+) -> /.exec(added.stdout)?.[1];
      const secret = /(whsec_\S+)/.exec(added.stdout)?.[1];
      assert.ok(id && secret, added.stdout);
      assert.match(added.stdout, /events: login\.locked, user\.created/);

      const [listed] = await list();
      assert.deepEqual([listed?.id, listed?.url, listed?.events], [id, receiver.url, ['login.locked', 'user.created']]);
      const table = await cli(['webhooks', 'list']);
      assert.match(table.stdout, new RegExp(`${id}\\s+${receiver.url.replace(/[.]/g, '\\.')}\\s+login\\.locked,user\\.created`));
      assert.ok(!table.stdout.includes('whsec_') && !JSON.stringify(listed).includes('whsec_'), 'the secret is never listed');

      const tested = await cli(['webhooks', 'test', id]);
      assert.equal(tested.code, 0, tested.stderr);
      assert.match(tested.stdout, /queued test message msg_\S+\ndelivered: HTTP 200 at \S+ \(attempt 1\)/);
      assert.equal(receiver.requests.length, 1);
      const body = verified(secret, receiver.requests[0]!);
      assert.equal(body.type, 'webhook.test');
      assert.equal(body.actor, 'cli');
      assert.deepEqual(body.detail, { webhook_id: id });
      assert.equal(messageIdOf(receiver.requests[0]!), /queued test message (\S+)/.exec(tested.stdout)?.[1]);
      assert.equal((await list())[0]?.pending, 0);

      const removed = await cli(['webhooks', 'remove', id]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(await list(), []);
      const again = await cli(['webhooks', 'remove', id]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /Webhook not found/);
    } finally {
      await receiver.close();
    }
  });

  test('test reports a failed attempt and exits 1; the message stays queued for the service', async () => {
    const receiver = await startReceiver(() => 500);
    try {
      const added = await cli(['webhooks', 'add', receiver.url]);
      const id = /added webhook (wh_\S+)/.exec(added.stdout)![1]!;
      const tested = await cli(['webhooks', 'test', id]);
      assert.equal(tested.code, 1);
      assert.match(tested.stderr, /attempt 1 failed: HTTP 500; a running server retries it at /);
      assert.equal((await list())[0]?.pending, 1);
      // A second test waits behind the first: it is not sent out of order.
      const queued = await cli(['webhooks', 'test', id]);
      assert.equal(queued.code, 1);
      assert.match(queued.stderr, /not sent yet: 1 earlier message\(s\) of this webhook go first/);
      assert.equal(receiver.requests.length, 1);
      assert.equal((await cli(['webhooks', 'remove', id])).code, 0);
    } finally {
      await receiver.close();
    }
  });

  test('bad input exits 1 with a clear message and stores nothing', async () => {
    const manyTypes = [...EVENT_TYPES, ...EVENT_TYPES].join(',');
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['webhooks', 'add', 'ftp://hooks.example.com/'], {}, /url: URL must be an http:\/\/ or https:\/\/ URL, not ftp:/],
      [['webhooks', 'add', 'not a url'], {}, /absolute http/],
      [['webhooks', 'add', `https://hooks.example.com/${'a'.repeat(3000)}`], {}, /at most 2048 characters/],
      [['webhooks', 'add', 'https://hooks.example.com/', '--events', 'nope'], {}, /--events: Unknown event type "nope"/],
      [['webhooks', 'add', 'https://hooks.example.com/', '--events', 'login.locked,login.locked'], {}, /--events: login\.locked is listed twice/],
      [['webhooks', 'add', 'https://hooks.example.com/', '--events', manyTypes], {}, /--events: at most \d+ types, each once/],
      [['webhooks', 'add', 'https://hooks.example.com/', '--events', 'x'.repeat(100_000)], {}, /--events: at most \d+ types/],
      [['webhooks', 'add', 'https://hooks.example.com/', '--events', 'login.locked,,user.created'], {}, /without empty entries/],
      [['webhooks', 'add', 'https://hooks.example.com/', '--events', ''], {}, /without empty entries/],
      [['webhooks', 'add', 'http://127.0.0.1:9/hook'], { PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: 'false' }, /not a public address.*PORTCULLIS_WEBHOOK_ALLOW_PRIVATE=true/],
      [['webhooks', 'test', 'wh_nope'], {}, /Webhook not found/],
      [['webhooks', 'remove', 'wh_nope'], {}, /Webhook not found/],
    ];
    for (const [argv, extra, message] of cases) {
      const result = await cli(argv, extra);
      assert.equal(result.code, 1, `${argv.join(' ').slice(0, 100)}: ${result.stdout}`);
      assert.match(result.stderr, message, argv.join(' ').slice(0, 100));
    }
    const added = await cli(['webhooks', 'add', 'https://hooks.example.com/one']);
    assert.equal(added.code, 0, added.stderr);
    const duplicate = await cli(['webhooks', 'add', 'https://hooks.example.com/one']);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /registered already/);
    assert.deepEqual((await list()).map((w) => w.url), ['https://hooks.example.com/one']);
    assert.equal((await cli(['webhooks', 'add'])).code, 2, 'a usage error');
  });

  test('prune deletes done webhook messages and reports them', async () => {
    const result = await cli(['prune']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok('webhook_deliveries' in JSON.parse(result.stdout), result.stdout);
  });

  test('disabling a user from the CLI records session.ended with reason user_disabled (the admin API records admin)', async () => {
    const runtime = await openRuntime(loadConfig({ env }));
    try {
      await runtime.service.createUser({ username: 'cli-carl', password: 'cli-carl-password', scopes: ['me'] });
      await runtime.service.passwordGrant({ username: 'cli-carl', password: 'cli-carl-password', scope: undefined, client: { address: '127.0.0.1', userAgent: null, clientId: null } });
    } finally {
      await runtime.close();
    }
    assert.equal((await cli(['users', 'disable', 'cli-carl'])).code, 0);
    const events = await cli(['events', '--type', 'session.ended', '--user', 'cli-carl']);
    assert.deepEqual(events.stdout.trim().split('\n').map((line) => JSON.parse(line).detail), [{ reason: 'user_disabled' }]);
  });
});

describe('webhook housekeeping', () => {
  test('a pass deletes messages done longer than 7 days ago and those of removed webhooks, and keeps pending ones', async () => {
    const dir = tempDir('portcullis-webhooks-prune-');
    const clock = createManualClock(Date.now());
    const runtime = await openRuntime(loadConfig({ env: { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`, PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: 'true' } }), { clock });
    const receiver = await startReceiver();
    try {
      const { webhook } = await runtime.webhooks.add({ url: receiver.url });
      const delivered = await runtime.webhooks.sendTest(webhook.id);
      assert.equal((await runtime.webhooks.deliverNow(delivered))?.outcome.kind, 'delivered');
      const pending = await runtime.webhooks.sendTest(webhook.id);
      const db = runtime.store.database.db;
      const orphan = { ...(await db.selectFrom('webhook_deliveries').selectAll().where('id', '=', pending).executeTakeFirstOrThrow()), id: 'msg_orphan', webhook_id: 'wh_removed' };
      await db.insertInto('webhook_deliveries').values(orphan).execute();

      const now = await runPrune(runtime.pruneSteps());
      assert.equal(now.webhook_deliveries?.deleted, 1, 'only the orphan: the delivered one is recent');
      clock.advance(8 * DAY);
      const later = await runPrune(runtime.pruneSteps(), { batchSize: 1 });
      assert.equal(later.webhook_deliveries?.deleted, 1);
      assert.deepEqual((await db.selectFrom('webhook_deliveries').select('id').execute()).map((r) => r.id), [pending]);
    } finally {
      await receiver.close();
      await runtime.close();
      dir.remove();
    }
  });
});

describe('key.rotated at start-up', () => {
  test('is recorded when the key ring rotates by itself (algorithm or secret key changed), once, and not when nothing changed', async () => {
    const dir = tempDir('portcullis-webhooks-keys-');
    const base = { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}` };
    const open = async (extra: Record<string, string>) => (await openRuntime(loadConfig({ env: { ...base, ...extra } }))).close();
    const rotations = async () => {
      const result = await runCliWith(base, ['events', '--type', 'key.rotated']);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim() === '' ? [] : result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { actor: string; detail: Record<string, unknown> });
    };
    try {
      await open({ PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA' });
      assert.deepEqual(await rotations(), [], 'the first key is created, not rotated');
      await open({ PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA' });
      assert.deepEqual(await rotations(), []);
      await open({ PORTCULLIS_TOKEN_ALGORITHM: 'ES256' });
      const [byAlgorithm] = await rotations();
      assert.equal(byAlgorithm?.actor, 'system');
      assert.deepEqual(Object.keys(byAlgorithm!.detail).sort(), ['alg', 'kid', 'previous_kid', 'reason']);
      assert.deepEqual([byAlgorithm!.detail.alg, byAlgorithm!.detail.reason], ['ES256', 'algorithm_changed']);
      await open({ PORTCULLIS_TOKEN_ALGORITHM: 'ES256', PORTCULLIS_SECRET_KEY: `${TEST_SECRET}-another` });
      const all = await rotations();
      assert.equal(all.length, 2);
      assert.equal(all[1]?.detail.reason, 'secret_key_changed');
      assert.equal(all[1]?.detail.previous_kid, byAlgorithm!.detail.kid);
    } finally {
      dir.remove();
    }
  });
});
