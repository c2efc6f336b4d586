/**
 * The security event feed, transmitter side (SPEC §8), over real HTTP on SQLite and PostgreSQL:
 * the SSF configuration and its own JWKS (also under HS256), SETs that a standard JOSE library
 * (`jose`) verifies against that JWKS, one per audit event that ends a session, changes a
 * password, disables or deletes a user or revokes a key, with the right type and subject; a
 * queue per receiver, acknowledgements and redelivery, two receivers, a receiver registered
 * later; client authentication (401) and the `events` scope (403); the long poll released by
 * an event (also one written by another connection), by the client going away and by
 * shutdown; bad bodies answered 400 changing nothing; pruning.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { buildApp } from '../src/app.ts';
import { createAuthService, type AuthService } from '../src/core/auth-service.ts';
import { createManualClock, type ManualClock } from '../src/core/clock.ts';
import { eventFrom } from '../src/core/events.ts';
import { runPrune, securityEventPruneStep } from '../src/core/housekeeping.ts';
import { openKeyRing, type KeyRing } from '../src/core/key-ring.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { MAX_ACKS } from '../src/core/poll-request.ts';
import { DEFAULT_SCOPES } from '../src/core/scopes.ts';
import { createSecurityEventFeed, type SecurityEventFeed } from '../src/core/security-event-feed.ts';
import { securityEventRetentionMs } from '../src/core/security-events.ts';
import { ACCOUNT_DISABLED, ACCOUNT_PURGED, CREDENTIAL_CHANGE, KEY_REVOKED, SESSION_REVOKED, SET_TYPE } from '../src/resource-server/event-types.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { createSecurityEventStore, openSecurityEventKeyRing } from '../src/store/security-event-store.ts';
import { createSigningKeyStore } from '../src/store/signing-keys.ts';
import { CHEAP_ARGON2, tempDir, TEST_SECRET } from './helpers.ts';
import { scratchDatabase, testDatabases } from './pg.ts';

const ANALYST = { username: 'analyst', password: 'analyst-password' };
const SCOPES = { ...DEFAULT_SCOPES, 'reports:read': 'Read reports.' };
/** Bounded waits: a held poll is answered long before this, and 25 s is the hold. */
const ANSWER_MS = 20_000;

interface Receiver {
  clientId: string;
  secret: string;
}

interface Ctx {
  url: string;
  store: KyselyStore;
  service: AuthService;
  feed: SecurityEventFeed;
  app: FastifyInstance;
  clock: ManualClock;
  keyRing: KeyRing | undefined;
  /** A second connection to the same database, as another process has. */
  other(): Promise<{ store: KyselyStore; service: AuthService; close(): Promise<void> }>;
  close(): Promise<void>;
}

async function feedContext(databaseUrl: string, options: { eddsa?: boolean } = {}): Promise<Ctx> {
  const dir = tempDir('portcullis-feed-');
  // SQLite in a file, so that a second connection (another process) can share it.
  const database = await scratchDatabase(databaseUrl.startsWith('sqlite:') ? `sqlite:${join(dir.path, 'feed.db')}` : databaseUrl);
  const clock = createManualClock(Date.now());
  const store = await openStore(database.url, { clock });
  await store.migrate();
  const makeService = async (s: KyselyStore): Promise<{ service: AuthService; keyRing: KeyRing | undefined }> => {
    const keyRing = options.eddsa ? await openKeyRing({ store: createSigningKeyStore(s), algorithm: 'EdDSA', secretKey: TEST_SECRET, accessTokenTtl: 1800, clock }) : undefined;
    // No issuer: the issuer in effect is the origin asked, as for every URL Portcullis names.
    const service = createAuthService({ store: s, secretKey: TEST_SECRET, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, scopes: SCOPES, keyRing, clock });
    return { service, keyRing };
  };
  const { service, keyRing } = await makeService(store);
  const setKeys = await openSecurityEventKeyRing(store, { secretKey: TEST_SECRET, accessTokenTtl: 1800 });
  const feed = createSecurityEventFeed({ store: createSecurityEventStore(store), keyRing: setKeys });
  const app = await buildApp({ service, logger: false, securityEvents: feed });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const others: Array<() => Promise<void>> = [];
  return {
    url,
    store,
    service,
    feed,
    app,
    clock,
    keyRing,
    async other() {
      const otherStore = await openStore(database.url, { clock });
      const made = await makeService(otherStore);
      const close = async (): Promise<void> => {
        made.keyRing?.close();
        await otherStore.close();
      };
      others.push(close);
      return { store: otherStore, service: made.service, close };
    },
    async close() {
      await app.close();
      for (const close of others) await close().catch(() => undefined);
      setKeys.close();
      keyRing?.close();
      await store.close();
      await database.drop();
      dir.remove();
    },
  };
}

const basic = (receiver: Receiver): string => `Basic ${Buffer.from(`${receiver.clientId}:${receiver.secret}`).toString('base64')}`;

async function addReceiver(service: AuthService, name = 'reports'): Promise<Receiver> {
  const { client, secret } = await service.createClient({ name, scopes: ['events'] });
  return { clientId: client.clientId, secret: secret as string };
}

function rawPoll(ctx: Ctx, receiver: Receiver | undefined, body: string | undefined, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${ctx.url}/events/poll`, {
    method: 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(receiver ? { authorization: basic(receiver) } : {}), ...headers },
    ...(body === undefined ? {} : { body }),
    signal: signal ?? AbortSignal.timeout(ANSWER_MS),
  });
}

async function poll(ctx: Ctx, receiver: Receiver, body: Record<string, unknown> = { returnImmediately: true }): Promise<{ sets: Record<string, string>; moreAvailable: boolean }> {
  const response = await rawPoll(ctx, receiver, JSON.stringify(body));
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal(response.headers.get('cache-control'), 'no-store');
  return (await response.json()) as { sets: Record<string, string>; moreAvailable: boolean };
}

/** Every SET queued for `receiver`, verified with jose against the SSF configuration's jwks_uri, acknowledged. */
async function drain(ctx: Ctx, receiver: Receiver): Promise<Array<JWTPayload & { events: Record<string, Record<string, unknown>>; sub_id: { format: string; id: string }; txn?: string }>> {
  const configuration = (await (await fetch(`${ctx.url}/.well-known/ssf-configuration`)).json()) as { issuer: string; jwks_uri: string };
  const jwks = createRemoteJWKSet(new URL(configuration.jwks_uri));
  const out = [];
  for (let round = 0; round < 50; round++) {
    const { sets, moreAvailable } = await poll(ctx, receiver, { returnImmediately: true, maxEvents: 10 });
    for (const [jti, set] of Object.entries(sets)) {
      const { payload, protectedHeader } = await jwtVerify(set, jwks, { typ: SET_TYPE, issuer: configuration.issuer, audience: receiver.clientId, algorithms: ['EdDSA'] });
      assert.equal(payload.jti, jti, 'delivered under its own jti');
      assert.equal(typeof protectedHeader.kid, 'string');
      out.push(payload as JWTPayload & { events: Record<string, Record<string, unknown>>; sub_id: { format: string; id: string }; txn?: string });
    }
    if (Object.keys(sets).length > 0) await poll(ctx, receiver, { ack: Object.keys(sets), maxEvents: 0 });
    if (!moreAvailable) return out;
  }
  assert.fail('the queue never emptied');
}

async function login(ctx: Ctx, extra: Record<string, string> = {}): Promise<{ access_token: string; sid: string }> {
  const response = await fetch(`${ctx.url}/token`, { method: 'POST', body: new URLSearchParams({ ...ANALYST, ...extra }), signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200, await response.clone().text());
  const { access_token } = (await response.json()) as { access_token: string };
  const { sid } = JSON.parse(Buffer.from(access_token.split('.')[1]!, 'base64url').toString()) as { sid: string };
  return { access_token, sid };
}

const typeOf = (set: { events: Record<string, unknown> }): string => Object.keys(set.events)[0]!;

/** Polls `probe` every 10 ms until it holds, at most `ms`. */
async function until(probe: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const database of await testDatabases()) {
  describe(`the security event feed on ${database.name}`, { skip: database.skip }, () => {
    let ctx: Ctx;
    let receiver: Receiver;
    let analystId: string;

    before(async () => {
      ctx = await feedContext(database.url);
      receiver = await addReceiver(ctx.service);
      analystId = (await ctx.service.createUser({ ...ANALYST, scopes: ['me', 'reports:read'] })).id;
    });
    after(() => ctx.close());

    test('GET /.well-known/ssf-configuration names the issuer, its own JWKS and the RFC 8936 poll endpoint; the RFC 8414 metadata points to it', async () => {
      const response = await fetch(`${ctx.url}/.well-known/ssf-configuration`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), {
        spec_version: '1_0',
        issuer: ctx.url,
        jwks_uri: `${ctx.url}/.well-known/ssf-jwks.json`,
        delivery_methods_supported: ['urn:ietf:rfc:8936'],
        delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${ctx.url}/events/poll` },
        events_supported: [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_PURGED, KEY_REVOKED],
      });
      const metadata = (await (await fetch(`${ctx.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
      assert.equal(metadata.security_event_feed, `${ctx.url}/.well-known/ssf-configuration`);
    });

    test('SETs have an Ed25519 key of their own, while the access-token JWKS stays empty under HS256', async () => {
      const keys = (await (await fetch(`${ctx.url}/.well-known/ssf-jwks.json`)).json()) as { keys: Array<Record<string, unknown>> };
      assert.equal(keys.keys.length, 1);
      const [key] = keys.keys;
      assert.deepEqual(Object.keys(key!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
      assert.equal(key!.kty, 'OKP');
      assert.equal(key!.crv, 'Ed25519');
      assert.deepEqual(await (await fetch(`${ctx.url}/.well-known/jwks.json`)).json(), { keys: [] });
    });

    test('a logout gives one session-revoked SET, verified by jose, about the sid, carrying the audit event as txn', async () => {
      const { access_token, sid } = await login(ctx);
      const logout = await fetch(`${ctx.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${access_token}` } });
      assert.equal(logout.status, 204);
      const sets = await drain(ctx, receiver);
      assert.equal(sets.length, 1);
      const [set] = sets;
      assert.deepEqual(set!.sub_id, { format: 'opaque', id: sid });
      assert.equal(typeOf(set!), SESSION_REVOKED);
      assert.equal(set!.aud, receiver.clientId);
      assert.equal(set!.iss, ctx.url);
      assert.equal(set!.events[SESSION_REVOKED]!.event_timestamp, set!.iat);
      assert.deepEqual(set!.events[SESSION_REVOKED]!.reason_admin, { en: 'logout' });
      const [ended] = (await ctx.service.listEvents({ type: 'session.ended', limit: 1 })).items;
      assert.equal(set!.txn, ended!.id, 'txn names the audit event the SET was derived from');
    });

    test('password set by an admin, disabling, deleting: credential-change, account-disabled and account-purged about the user, with session-revoked for each session', async () => {
      const first = await login(ctx);
      await ctx.service.updateUser(analystId, { password: 'another-password' });
      let sets = await drain(ctx, receiver);
      assert.deepEqual(sets.map((s) => [typeOf(s), s.sub_id.id]).sort(), [[CREDENTIAL_CHANGE, analystId], [SESSION_REVOKED, first.sid]].sort());
      const change = sets.find((s) => typeOf(s) === CREDENTIAL_CHANGE)!;
      assert.deepEqual(change.events[CREDENTIAL_CHANGE], { credential_type: 'password', change_type: 'update', event_timestamp: change.iat });

      ANALYST.password = 'another-password';
      const second = await login(ctx);
      await ctx.service.updateUser(analystId, { disabled: true });
      sets = await drain(ctx, receiver);
      assert.deepEqual(sets.map((s) => [typeOf(s), s.sub_id.id]).sort(), [[ACCOUNT_DISABLED, analystId], [SESSION_REVOKED, second.sid]].sort());
      // Enabling again is no event of the feed.
      await ctx.service.updateUser(analystId, { disabled: false });
      assert.deepEqual(await drain(ctx, receiver), []);

      const third = await login(ctx);
      await ctx.service.deleteUser(analystId);
      sets = await drain(ctx, receiver);
      assert.deepEqual(sets.map((s) => [typeOf(s), s.sub_id.id]).sort(), [[ACCOUNT_PURGED, analystId], [SESSION_REVOKED, third.sid]].sort());
      ANALYST.password = 'analyst-password';
      analystId = (await ctx.service.createUser({ ...ANALYST, scopes: ['me', 'reports:read'] })).id;
    });

    test('a self-service password change and a password reset give credential-change; the other sessions end', async () => {
      const kept = await login(ctx);
      const other = await login(ctx);
      const user = await ctx.service.getUser(ANALYST.username);
      await ctx.service.changePassword({ user, sessionId: kept.sid, currentPassword: ANALYST.password, newPassword: 'changed-password-1', address: '127.0.0.1' });
      let sets = await drain(ctx, receiver);
      assert.deepEqual(sets.map((s) => [typeOf(s), s.sub_id.id]).sort(), [[CREDENTIAL_CHANGE, analystId], [SESSION_REVOKED, other.sid]].sort());

      // The reset's store write (SPEC §10), as `POST /password-reset` makes it.
      const tokenHash = createHash('sha256').update(randomBytes(32)).digest('base64url');
      const now = ctx.clock();
      await ctx.store.issueOneTimeToken({ purpose: 'password_reset', tokenHash, userId: analystId, email: null, expiresAt: now + 60_000 }, now, { mail: { to: 'a@example.com', subject: 's', text: 't', html: 'h' } });
      const reset = await ctx.store.resetPasswordWithToken(tokenHash, now, await ctx.service.hashPassword(ANALYST.password), {
        changed: eventFrom('password.changed', now, { actor: ANALYST.username }, { username: ANALYST.username, detail: { reason: 'reset' } }),
        ended: eventFrom('session.ended', now, { actor: ANALYST.username }, { username: ANALYST.username, detail: { reason: 'password_changed' } }),
      });
      assert.equal(reset?.endedSessions, 1);
      sets = await drain(ctx, receiver);
      assert.deepEqual(sets.map((s) => [typeOf(s), s.sub_id.id]).sort(), [[CREDENTIAL_CHANGE, analystId], [SESSION_REVOKED, kept.sid]].sort());
    });

    test('removing a client ends the sessions it obtained: session-revoked for each, initiated by an admin', async () => {
      const { client } = await ctx.service.createClient({ name: 'web', type: 'public', grants: ['password', 'refresh_token'] });
      const { sid } = await login(ctx, { client_id: client.clientId });
      await ctx.service.removeClient(client.clientId);
      const sets = await drain(ctx, receiver);
      assert.deepEqual(sets.map((s) => [typeOf(s), s.sub_id.id]), [[SESSION_REVOKED, sid]]);
      assert.deepEqual(sets[0]!.events[SESSION_REVOKED], { initiating_entity: 'admin', reason_admin: { en: 'client_removed' }, event_timestamp: sets[0]!.iat });
    });

    test('an unacknowledged SET is delivered again, the same text; an acknowledged one never; acks touch only the acknowledging receiver', async () => {
      const other = await addReceiver(ctx.service, 'billing');
      const { access_token, sid } = await login(ctx);
      await ctx.service.revokeToken({ token: access_token });
      const once = await poll(ctx, receiver);
      const again = await poll(ctx, receiver);
      assert.equal(Object.keys(once.sets).length, 1);
      assert.deepEqual(again, once, 'redelivered, byte for byte');
      const [jti] = Object.keys(once.sets);
      // The other receiver acknowledging this jti changes nothing here.
      await poll(ctx, other, { ack: [jti], maxEvents: 0 });
      assert.deepEqual(await poll(ctx, receiver), once);
      const acked = await poll(ctx, receiver, { ack: [jti], returnImmediately: true });
      assert.deepEqual(acked, { sets: {}, moreAvailable: false }, 'the ack and the next batch in one request');
      const otherSets = await drain(ctx, other);
      assert.deepEqual(otherSets.map((s) => s.sub_id.id), [sid], 'the other receiver still has its copy');
      await ctx.service.removeClient(other.clientId);
    });

    test('two receivers each get every event, under their own jti and aud; a receiver registered later gets what happens from then on', async () => {
      const second = await addReceiver(ctx.service, 'billing');
      const a = await login(ctx);
      await ctx.service.logout(a.sid);
      const late = await addReceiver(ctx.service, 'audit');
      const b = await login(ctx);
      await ctx.service.logout(b.sid);
      const first = await drain(ctx, receiver);
      const other = await drain(ctx, second);
      assert.deepEqual(first.map((s) => s.sub_id.id), [a.sid, b.sid], 'oldest first');
      assert.deepEqual(other.map((s) => s.sub_id.id), [a.sid, b.sid]);
      assert.deepEqual(first.map((s) => s.txn), other.map((s) => s.txn), 'the same audit events');
      assert.equal(new Set([...first, ...other].map((s) => s.jti)).size, 4, 'every SET its own jti');
      assert.deepEqual(other.map((s) => s.aud), [second.clientId, second.clientId]);
      assert.deepEqual((await drain(ctx, late)).map((s) => s.sub_id.id), [b.sid]);
      await ctx.service.removeClient(second.clientId);
      await ctx.service.removeClient(late.clientId);
    });

    test('maxEvents bounds a batch and moreAvailable says more wait; maxEvents 0 only acknowledges', async () => {
      for (let i = 0; i < 3; i++) await ctx.service.logout((await login(ctx)).sid);
      const batch = await poll(ctx, receiver, { maxEvents: 2, returnImmediately: true });
      assert.equal(Object.keys(batch.sets).length, 2);
      assert.equal(batch.moreAvailable, true);
      assert.deepEqual(await poll(ctx, receiver, { ack: Object.keys(batch.sets), maxEvents: 0 }), { sets: {}, moreAvailable: true });
      const rest = await poll(ctx, receiver, { maxEvents: 2, returnImmediately: true });
      assert.equal(Object.keys(rest.sets).length, 1);
      assert.equal(rest.moreAvailable, false);
      await poll(ctx, receiver, { ack: Object.keys(rest.sets), maxEvents: 0 });
    });

    test('no client, a wrong secret, a bearer token or an unknown client: 401 invalid_client; a client without the events scope: 403 access_denied', async () => {
      const body = JSON.stringify({ returnImmediately: true });
      for (const [what, headers] of [
        ['no credentials', {}],
        ['a wrong secret', { authorization: basic({ ...receiver, secret: 'wrong' }) }],
        ['an unknown client', { authorization: basic({ clientId: 'AAAAAAAAAAAAAAAAAAAAAA', secret: 'x' }) }],
        ['a bearer token', { authorization: `Bearer ${(await login(ctx)).access_token}` }],
      ] as const) {
        const response = await rawPoll(ctx, undefined, body, headers);
        assert.equal(response.status, 401, what);
        assert.equal(response.headers.get('www-authenticate'), 'Basic realm="portcullis"', what);
        assert.equal(((await response.json()) as { error: string }).error, 'invalid_client', what);
      }
      const { client, secret } = await ctx.service.createClient({ name: 'no-feed', scopes: ['reports:read'] });
      const refused = await rawPoll(ctx, { clientId: client.clientId, secret: secret as string }, body);
      assert.equal(refused.status, 403);
      assert.equal(((await refused.json()) as { error: string }).error, 'access_denied');
      // A public client cannot be given the scope at all.
      await assert.rejects(ctx.service.createClient({ name: 'spa', type: 'public', scopes: ['events'] }), /no secret/);
      // And no user can hold it: it is a client's right, not a user scope.
      await assert.rejects(ctx.service.createUser({ username: 'eve', password: 'eve-password-1', scopes: ['events'] }));
      await drain(ctx, receiver);
    });

    test('bad bodies are 400 in RFC 8936’s shape and acknowledge nothing', async () => {
      const { sid } = await login(ctx);
      await ctx.service.logout(sid);
      const [jti] = Object.keys((await poll(ctx, receiver)).sets);
      assert.ok(jti);
      const bad: Array<[string, string, Record<string, string>?]> = [
        ['not JSON', `{"ack": ["${jti}"`],
        ['an array', `["${jti}"]`],
        ['a string', `"${jti}"`],
        ['ack not an array', JSON.stringify({ ack: jti })],
        ['ack of numbers', JSON.stringify({ ack: [jti, 42] })],
        ['an empty jti', JSON.stringify({ ack: [jti, ''] })],
        ['too many acks', JSON.stringify({ ack: [jti, ...Array.from({ length: MAX_ACKS }, (_, i) => `jti-${i}`)] })],
        ['setErrs not an object', JSON.stringify({ ack: [jti], setErrs: [] })],
        ['setErrs without err', JSON.stringify({ ack: [jti], setErrs: { x: { description: 'no err' } } })],
        ['maxEvents negative', JSON.stringify({ ack: [jti], maxEvents: -1 })],
        ['maxEvents too large', JSON.stringify({ ack: [jti], maxEvents: 1001 })],
        ['maxEvents not whole', JSON.stringify({ ack: [jti], maxEvents: 1.5 })],
        ['maxEvents as text', JSON.stringify({ ack: [jti], maxEvents: '5' })],
        ['returnImmediately as text', JSON.stringify({ ack: [jti], returnImmediately: 'yes' })],
        ['an empty JSON body', ''],
        ['plain text', `ack=${jti}`, { 'content-type': 'text/plain' }],
      ];
      for (const [what, body, headers] of bad) {
        const response = await rawPoll(ctx, receiver, body, headers ?? {});
        assert.equal(response.status, 400, what);
        const answer = (await response.json()) as { err: string; description: string; detail: string };
        assert.equal(answer.err, 'invalid_request', what);
        assert.ok(answer.description.length > 0, what);
        assert.equal(answer.detail, answer.description, what);
      }
      assert.deepEqual(Object.keys((await poll(ctx, receiver)).sets), [jti], 'nothing was acknowledged');
      await poll(ctx, receiver, { ack: [jti], maxEvents: 0 });
      // No body at all is a poll with every default (and unknown members are ignored).
      const response = await rawPoll(ctx, receiver, JSON.stringify({ returnImmediately: true, extension: 1 }));
      assert.equal(response.status, 200);
    });

    test('a held poll is answered as soon as an event for its receiver arrives, before the hold ends', async () => {
      const { sid } = await login(ctx);
      const held = poll(ctx, receiver, { returnImmediately: false });
      await until(() => ctx.feed.heldPolls() === 1);
      await ctx.service.logout(sid);
      const { sets } = await held;
      const [set] = Object.values(sets);
      assert.ok(set, 'the poll came back with the SET');
      assert.equal((JSON.parse(Buffer.from(set.split('.')[1]!, 'base64url').toString()) as { sub_id: { id: string } }).sub_id.id, sid);
      assert.equal(ctx.feed.heldPolls(), 0);
      await drain(ctx, receiver);
    });

    test('a held poll wakes for a change written by another connection (another process, or instance)', async () => {
      const other = await ctx.other();
      const { sid } = await login(ctx);
      const held = poll(ctx, receiver, { returnImmediately: false });
      await until(() => ctx.feed.heldPolls() === 1);
      await other.service.logout(sid);
      const { sets } = await held;
      assert.equal(Object.keys(sets).length, 1);
      await drain(ctx, receiver);
      await other.close();
    });

    test('a held poll ends when its client goes away', async () => {
      const gone = new AbortController();
      const held = rawPoll(ctx, receiver, JSON.stringify({}), {}, gone.signal).catch((error: unknown) => error);
      await until(() => ctx.feed.heldPolls() === 1);
      gone.abort();
      assert.ok((await held) instanceof Error);
      await until(() => ctx.feed.heldPolls() === 0);
    });

    test('removing a receiver drops its queue; housekeeping prunes SETs past the retention and those of clients that lost the scope', async () => {
      const gone = await addReceiver(ctx.service, 'gone');
      const stripped = await addReceiver(ctx.service, 'stripped');
      await ctx.service.logout((await login(ctx)).sid);
      const queues = createSecurityEventStore(ctx.store);
      assert.equal((await queues.receiversWithSecurityEvents([gone.clientId, stripped.clientId, receiver.clientId])).size, 3);
      await ctx.service.removeClient(gone.clientId);
      assert.deepEqual(await queues.receiversWithSecurityEvents([gone.clientId]), new Set());
      await ctx.service.updateClient(stripped.clientId, { scopes: [] });
      const step = securityEventPruneStep(queues, { accessTokenTtl: 1800, clock: ctx.clock });
      assert.equal((await runPrune([step])).security_events!.deleted, 1, 'the stripped client’s SET');
      assert.equal((await queues.listSecurityEvents(receiver.clientId, 10)).length, 1, 'the receiver’s stays within the retention');
      const later = createManualClock(ctx.clock() + securityEventRetentionMs(1800) + 1);
      assert.equal((await runPrune([securityEventPruneStep(queues, { accessTokenTtl: 1800, clock: later })])).security_events!.deleted, 1);
      assert.deepEqual(await poll(ctx, receiver), { sets: {}, moreAvailable: false });
    });

    test('the OpenAPI document has the poll endpoint and the SSF configuration', async () => {
      const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>> };
      assert.deepEqual(Object.keys(doc.paths['/events/poll']!.post!.responses).sort(), ['200', '400', '401', '403']);
      assert.ok(doc.paths['/events/poll']!.post!.requestBody);
      assert.ok(doc.paths['/.well-known/ssf-configuration']!.get);
      assert.ok(doc.paths['/.well-known/ssf-jwks.json']!.get);
    });

    test('shutdown answers a held poll at once', async () => {
      const held = poll(ctx, receiver, { returnImmediately: false });
      await until(() => ctx.feed.heldPolls() === 1);
      await ctx.app.close();
      assert.deepEqual(await held, { sets: {}, moreAvailable: false });
    });
  });
}

describe('the key-revoked SET (EdDSA access tokens)', () => {
  let ctx: Ctx;
  let receiver: Receiver;
  before(async () => {
    ctx = await feedContext('sqlite::memory:', { eddsa: true });
    receiver = await addReceiver(ctx.service);
  });
  after(() => ctx.close());

  test('revoking a key records key.revoked and queues key-revoked with its kid; the SET key set is not the access-token key set', async () => {
    const ring = ctx.keyRing!;
    const kid = ring.keySet().signing.kid!;
    const revoked = await ring.revoke(kid, eventFrom('key.revoked', ctx.clock(), { actor: 'cli' }, { detail: { kid } }));
    assert.equal(revoked?.revoked.kid, kid);
    const [event] = (await ctx.service.listEvents({ type: 'key.revoked', limit: 5 })).items;
    assert.deepEqual(event?.detail, { kid });
    const { sets } = await poll(ctx, receiver);
    const [set] = Object.values(sets);
    assert.ok(set);
    const setKeys = (await (await fetch(`${ctx.url}/.well-known/ssf-jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    const tokenKeys = (await (await fetch(`${ctx.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    assert.equal(setKeys.keys.filter((k) => tokenKeys.keys.some((t) => t.kid === k.kid)).length, 0, 'two sets of keys');
    assert.equal(decodeProtectedHeader(set).kid, setKeys.keys[0]!.kid);
    const { payload } = await jwtVerify(set, createLocalJWKSet(setKeys as never), { typ: SET_TYPE, audience: receiver.clientId, issuer: ctx.url });
    assert.deepEqual(payload.sub_id, { format: 'opaque', id: kid });
    assert.deepEqual((payload.events as Record<string, unknown>)[KEY_REVOKED], { kid, event_timestamp: payload.iat });
    // Revoking a kid nobody has writes nothing.
    assert.equal(await ring.revoke('no-such-kid', eventFrom('key.revoked', ctx.clock(), { actor: 'cli' }, { detail: { kid: 'no-such-kid' } })), undefined);
    assert.equal((await ctx.service.listEvents({ type: 'key.revoked', limit: 5 })).items.length, 1);
  });
});
