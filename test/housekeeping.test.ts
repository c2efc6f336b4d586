/**
 * Housekeeping (SPEC §9.4): ended sessions and expired refresh tokens are pruned in bounded
 * batches, by the rule of core/housekeeping.ts, by the running service and by `portcullis prune`.
 * The store's own prune methods are in test/store-contract.test.ts (SQLite and PostgreSQL).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { LEEWAY_SECONDS } from '../src/core/access-token.ts';
import { runPrune, sessionPruneSteps, sessionRetentionSeconds } from '../src/core/housekeeping.ts';
import { startServer } from '../src/server.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { addUser, createTestContext, JOHN, login, postForm, refresh, runCliWith, tempDir, type TestContext } from './helpers.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TTLS = { accessTokenTtl: 900, refreshTokenTtl: DAY / 1000 };

/** Inserts `n` sessions of `userId` that ended (expired) at `endedAt`, each with one refresh token, in few statements. */
async function insertEndedSessions(store: KyselyStore, userId: string, n: number, endedAt: number, prefix = 'ended'): Promise<void> {
  const db = store.database.db;
  for (let i = 0; i < n; i += 200) {
    const ids = Array.from({ length: Math.min(200, n - i) }, (_, j) => `${prefix}-${i + j}`);
    await db
      .insertInto('sessions')
      .values(ids.map((id) => ({ id, user_id: userId, scopes: 'me', created_at: endedAt - DAY, last_used_at: endedAt - DAY, expires_at: endedAt, revoked_at: null, client_address: null, user_agent: null, client_id: null })))
      .execute();
    await db
      .insertInto('refresh_tokens')
      .values(ids.map((id) => ({ token_hash: `rt-${id}`, session_id: id, created_at: endedAt - DAY, expires_at: endedAt, rotated_at: null })))
      .execute();
  }
}

const count = async (store: KyselyStore, table: 'sessions' | 'refresh_tokens'): Promise<number> =>
  Number((await store.database.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

describe('housekeeping', () => {
  let ctx: TestContext;
  beforeEach(async () => {
    ctx = await createTestContext(TTLS);
    await addUser(ctx.service, JOHN);
  });
  afterEach(async () => ctx.close());

  test('the retention is the longer token lifetime plus the leeway', () => {
    assert.equal(sessionRetentionSeconds(TTLS), DAY / 1000 + LEEWAY_SECONDS);
    assert.equal(sessionRetentionSeconds({ accessTokenTtl: 7200, refreshTokenTtl: 3600 }), 7200 + LEEWAY_SECONDS);
  });

  test('a pass deletes sessions ended longer than the retention ago and keeps live and recently ended ones', async () => {
    const steps = sessionPruneSteps(ctx.store, { ...TTLS, clock: ctx.clock });
    const live = await login(ctx.app, JOHN.username, JOHN.password);
    const revokedLongAgo = await login(ctx.app, JOHN.username, JOHN.password);
    assert.equal((await postForm(ctx.app, '/revoke', { token: String(revokedLongAgo.body.refresh_token) })).statusCode, 200);
    // Half-way, the live session refreshes (so it outlives the others).
    ctx.clock.advance(DAY / 2);
    const rotated = await refresh(ctx.app, String(live.body.refresh_token));
    assert.equal(rotated.response.statusCode, 200);
    // Past the retention (1 day + leeway) of the first revocation, one more session is revoked.
    ctx.clock.advance(DAY / 2 + 60_000);
    const revokedRecently = await login(ctx.app, JOHN.username, JOHN.password);
    assert.equal((await postForm(ctx.app, '/revoke', { token: String(revokedRecently.body.refresh_token) })).statusCode, 200);

    const counts = await runPrune(steps);
    assert.deepEqual(counts.sessions, { deleted: 1, batches: 1, complete: true });
    assert.equal(await count(ctx.store, 'sessions'), 2);
    // The live session still refreshes; the recently revoked one is still told it was revoked.
    assert.equal((await refresh(ctx.app, String(rotated.body.refresh_token))).response.statusCode, 200);
    const refused = await refresh(ctx.app, String(revokedRecently.body.refresh_token));
    assert.equal(refused.response.statusCode, 400);
    assert.deepEqual([refused.body.error, refused.body.error_description], ['invalid_grant', 'Refresh token was revoked']);
    // The pruned session's refresh token is refused with the same status and error.
    const gone = await refresh(ctx.app, String(revokedLongAgo.body.refresh_token));
    assert.deepEqual([gone.response.statusCode, gone.body.error], [400, 'invalid_grant']);
  });

  test('a rotated refresh token is kept (reuse is detected) until it expired longer than the retention ago', async () => {
    const steps = sessionPruneSteps(ctx.store, { ...TTLS, clock: ctx.clock });
    const first = await login(ctx.app, JOHN.username, JOHN.password);
    const second = await refresh(ctx.app, String(first.body.refresh_token));
    ctx.clock.advance(HOUR);
    await runPrune(steps);
    // Reuse of the rotated first token is still recognised as such (SPEC §3).
    const reuse = await refresh(ctx.app, String(first.body.refresh_token));
    assert.deepEqual([reuse.response.statusCode, reuse.body.error, reuse.body.error_description], [400, 'invalid_grant', 'Refresh token was already used']);
    assert.equal(await count(ctx.store, 'refresh_tokens'), 2);
    ctx.clock.advance(2 * DAY + 2 * 60_000);
    const counts = await runPrune(steps);
    // The session (revoked for the reuse) and both its tokens are gone now.
    assert.equal(counts.sessions?.deleted, 1);
    assert.equal(await count(ctx.store, 'refresh_tokens'), 0);
    assert.equal((await refresh(ctx.app, String(second.body.refresh_token))).response.statusCode, 400);
  });

  test('more rows than one batch take several bounded batches; a pass stops at maxBatches and the next goes on', async () => {
    const userId = (await ctx.store.findUserByUsername(JOHN.username))!.id;
    const now = ctx.clock();
    await insertEndedSessions(ctx.store, userId, 1201, now - 3 * DAY);
    const steps = sessionPruneSteps(ctx.store, { ...TTLS, clock: ctx.clock });

    const first = await runPrune(steps, { batchSize: 500, maxBatches: 2 });
    assert.deepEqual(first.sessions, { deleted: 1000, batches: 2, complete: false });
    assert.equal(await count(ctx.store, 'sessions'), 201);
    const second = await runPrune(steps, { batchSize: 500, maxBatches: 2 });
    assert.deepEqual(second.sessions, { deleted: 201, batches: 1, complete: true });
    // Their tokens went with them: no expired token was left for the second step.
    assert.deepEqual(second.refresh_tokens, { deleted: 0, batches: 1, complete: true });
    assert.equal(await count(ctx.store, 'refresh_tokens'), 0);
  });
});

describe('housekeeping in the service and the CLI', () => {
  let dir: { path: string; remove(): void };
  let env: Record<string, string>;
  beforeEach(() => {
    dir = tempDir('portcullis-prune-');
    env = { DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`, PORTCULLIS_SECRET_KEY: 'test-secret-key-that-is-long-enough-0123456789' };
  });
  afterEach(() => dir.remove());

  /** A migrated store on the workspace's file with a user, 3 long-ended sessions and a live one. */
  async function seed(): Promise<KyselyStore> {
    const store = await openStore(env.DATABASE_URL!);
    await store.migrate();
    const user = await store.createUser({ username: 'jane', passwordHash: 'x', scopes: ['me'] }, Date.now());
    await insertEndedSessions(store, user.id, 3, Date.now() - 90 * DAY);
    await store.createSession({ id: 'live', userId: user.id, scopes: ['me'], createdAt: Date.now(), expiresAt: Date.now() + DAY, clientAddress: null, userAgent: null, clientId: null }, 'rt-live');
    // Audit events are kept PORTCULLIS_EVENT_RETENTION days (90 by default, SPEC §9.2).
    await store.appendEvents([
      { type: 'user.created', time: Date.now() - 91 * DAY, actor: 'cli', username: 'old' },
      { type: 'user.created', time: Date.now() - 89 * DAY, actor: 'cli', username: 'recent' },
    ]);
    // One-time tokens (SPEC §10): an expired one goes, a live one stays.
    for (const [hash, expiresAt] of [['expired-token', Date.now() - 1], ['live-token', Date.now() + DAY]] as const) {
      await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash, userId: null, email: null, expiresAt }, Date.now() - DAY, { mail: { to: 'x@example.invalid', subject: 's', text: 't', html: 'h' } });
    }
    // The security event feed (SPEC §8): a SET queued a day ago is past its retention (the
    // access-token lifetime, plus leeway and a minute); one queued now stays.
    await store.createClient({ clientId: 'receiver-000000000000000', name: 'r', type: 'confidential', secretHash: 'x', grants: [], scopes: ['events'], audiences: [], firstParty: false }, Date.now());
    const set = { receiver: 'receiver-000000000000000', event_id: 'e', event_type: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked', subject: 's', payload: '{}' };
    await store.database.db.insertInto('security_events').values([{ ...set, jti: 'old', created_at: Date.now() - DAY }, { ...set, jti: 'new', created_at: Date.now() }]).execute();
    return store;
  }

  test('`portcullis prune` runs one pass and prints the counts as JSON', async () => {
    await (await seed()).close();
    const result = await runCliWith(env, ['prune']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      sessions: { deleted: 3, batches: 1, complete: true },
      refresh_tokens: { deleted: 0, batches: 1, complete: true },
      events: { deleted: 1, batches: 1, complete: true },
      mfa_tokens: { deleted: 0, batches: 1, complete: true },
      one_time_tokens: { deleted: 1, batches: 1, complete: true },
      webhook_deliveries: { deleted: 0, batches: 1, complete: true },
      revoked_service_tokens: { deleted: 0, batches: 1, complete: true },
      security_events: { deleted: 1, batches: 1, complete: true },
    });
    const store = await openStore(env.DATABASE_URL!);
    try {
      assert.equal(await count(store, 'sessions'), 1);
      assert.deepEqual((await store.listEvents({ limit: 10 })).map((e) => e.username), ['recent'], 'the event within the retention stays');
      assert.notEqual(await store.getAuthState('live'), undefined);
      assert.deepEqual((await store.database.db.selectFrom('security_events').select('jti').execute()).map((r) => r.jti), ['new']);
    } finally {
      await store.close();
    }
  });

  test('the running service prunes periodically and stops on close', async () => {
    const store = await seed();
    const server = await startServer({ config: loadConfig({ env, flags: { port: 0 } }), logger: false, pruneIntervalMs: 50 });
    try {
      // Wait (bounded) for a pass to have deleted the ended sessions.
      for (let i = 0; i < 200 && (await count(store, 'sessions')) > 1; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(await count(store, 'sessions'), 1);
      assert.notEqual(await store.getAuthState('live'), undefined);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
