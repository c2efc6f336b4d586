import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { openStore } from '../store/open-store.ts';
import type { KyselyStore } from '../store/kysely-store.ts';
import { createAccessTokens, hmacKeySet, LEEWAY_SECONDS, type AccessTokens } from './access-token.ts';
import { createAuthService } from './auth-service.ts';
import { createAuthenticator, type Authenticator } from './authenticate.ts';
import { createManualClock, type ManualClock } from './clock.ts';
import { InactiveUserError, InsufficientScopeError, InvalidTokenError } from './errors.ts';

// The authenticator over the real store (SQLite in memory) and real tokens; only time is ours.
const START = Date.UTC(2030, 0, 1);
const SESSION_TTL_MS = 30 * 24 * 3600 * 1000;
const SECRET = 'authenticate-unit-test-secret-0123456789abcdef';
const ISSUER = 'https://auth.example.com';

let clock: ManualClock;
let store: KyselyStore;
let tokens: AccessTokens;
let auth: Authenticator;
let userId: string;

beforeEach(async () => {
  clock = createManualClock(START);
  store = await openStore('sqlite::memory:', { clock });
  await store.migrate();
  tokens = createAccessTokens({ keys: hmacKeySet(SECRET), issuer: ISSUER, ttlSeconds: 1800, clock });
  auth = createAuthenticator({ tokens, store, clock });
  userId = (await store.createUser({ username: 'jane', passwordHash: 'not-used-here', scopes: ['me', 'admin'] }, START)).id;
});

afterEach(async () => {
  await store.close();
});

/** A live session of `owner` and an access token for it, as a login would leave them. */
async function loggedIn(options: { scope?: string[]; sid?: string; owner?: string; sub?: string } = {}): Promise<string> {
  const sid = options.sid ?? 'session-1';
  const owner = options.owner ?? userId;
  const scope = options.scope ?? ['me'];
  const now = clock();
  await store.createSession({ id: sid, userId: owner, scopes: scope, createdAt: now, expiresAt: now + SESSION_TTL_MS, clientAddress: null, userAgent: null, clientId: null }, `refresh-hash-${sid}`);
  return tokens.issue({ sub: options.sub ?? owner, sid, scope }).token;
}

test('answers a token of a live session with its user, session and scopes', async () => {
  const token = await loggedIn({ scope: ['me', 'admin'] });
  const principal = await auth.authenticate(token, ['me']);
  assert.equal(principal.user.username, 'jane');
  assert.equal(principal.sessionId, 'session-1');
  assert.deepEqual(principal.scopes, ['me', 'admin']);
  assert.equal(principal.token.sub, userId);
});

test('refuses a token of a live session whose signature does not verify', async () => {
  const token = await loggedIn();
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const forged = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
  await assert.rejects(async () => auth.authenticate(`${header}.${payload}.${forged}`, []), InvalidTokenError);
  assert.ok(await auth.authenticate(token, []), 'the genuine token is accepted');
});

test('refuses a correctly signed token whose session does not exist', async () => {
  const token = tokens.issue({ sub: userId, sid: 'no-such-session', scope: ['me'] }).token;
  await assert.rejects(async () => auth.authenticate(token, []), InvalidTokenError);
});

test('refuses a token whose subject is not the owner of its session', async () => {
  const other = await store.createUser({ username: 'mallory', passwordHash: 'not-used-here', scopes: ['me'] }, START);
  const token = await loggedIn({ owner: userId, sub: other.id });
  await assert.rejects(async () => auth.authenticate(token, []), InvalidTokenError);
});

test('a revoked session fails on the very next call, although its state was cached', async () => {
  const token = await loggedIn();
  await auth.authenticate(token, []);
  assert.ok(!(auth.authenticate(token, []) instanceof Promise), 'the state is cached: answered without a promise');
  await store.revokeSession('session-1', clock());
  await assert.rejects(async () => auth.authenticate(token, []), InvalidTokenError);
});

test('a session past its expiry (plus the 5 s leeway) fails even while its access token is still valid', async () => {
  const token = await loggedIn();
  await auth.authenticate(token, []);
  clock.advance(SESSION_TTL_MS + LEEWAY_SECONDS * 1000 - 1000);
  // The access token expired long ago at this point: issue one as a refresh would, same session.
  const fresh = tokens.issue({ sub: userId, sid: 'session-1', scope: ['me'] }).token;
  await auth.authenticate(fresh, []);
  clock.advance(1000);
  await assert.rejects(async () => auth.authenticate(tokens.issue({ sub: userId, sid: 'session-1', scope: ['me'] }).token, []), InvalidTokenError);
});

test('refuses a token without a required scope with insufficient_scope naming the scopes required', async () => {
  const token = await loggedIn({ scope: ['me'] });
  await assert.rejects(async () => auth.authenticate(token, ['me', 'admin']), (error: unknown) => {
    assert.ok(error instanceof InsufficientScopeError);
    assert.deepEqual(error.requiredScopes, ['me', 'admin']);
    return true;
  });
});

test('a scope the user loses stops counting on the next call, though the token still carries it', async () => {
  const token = await loggedIn({ scope: ['me', 'admin'] });
  assert.deepEqual((await auth.authenticate(token, ['admin'])).scopes, ['me', 'admin']);
  await store.updateUser(userId, { scopes: ['me'] }, clock());
  await assert.rejects(async () => auth.authenticate(token, ['admin']), InsufficientScopeError);
  assert.deepEqual((await auth.authenticate(token, ['me'])).scopes, ['me']);
});

test('a user disabled after the token was issued gets Inactive user, also once the session has ended', async () => {
  const token = await loggedIn();
  await auth.authenticate(token, []);
  await store.updateUser(userId, { disabled: true }, clock());
  await assert.rejects(async () => auth.authenticate(token, []), InactiveUserError);
  await store.revokeUserSessions(userId, clock());
  await assert.rejects(async () => auth.authenticate(token, []), InactiveUserError);
});

test('a deleted user\'s token fails on the next call', async () => {
  const token = await loggedIn();
  await auth.authenticate(token, []);
  await store.deleteUser(userId);
  await assert.rejects(async () => auth.authenticate(token, []), InvalidTokenError);
});

test('answers from the cache without waiting once a session was read, and not before', async () => {
  const token = await loggedIn();
  const first = auth.authenticate(token, []);
  assert.ok(first instanceof Promise, 'nothing cached yet: the caller must wait for the store');
  await first;
  const cached = auth.authenticate(token, []);
  assert.ok(!(cached instanceof Promise), 'read once: answered from the cache');
  assert.equal(cached.user.username, 'jane');
  auth.clear();
  const cleared = auth.authenticate(token, []);
  assert.ok(cleared instanceof Promise, 'clear() drops the cache');
  await cleared;
});

test('holds at most maxCachedSessions sessions, evicting the least recently used; an evicted session is read again and revocation still counts', async () => {
  const bounded = createAuthenticator({ tokens, store, clock, maxCachedSessions: 2 });
  const [a, b, c] = [await loggedIn({ sid: 'a' }), await loggedIn({ sid: 'b' }), await loggedIn({ sid: 'c' })];
  await bounded.authenticate(a, []);
  await bounded.authenticate(b, []);
  assert.ok(!(bounded.authenticate(a, []) instanceof Promise), 'a is cached and now the most recently used');
  await bounded.authenticate(c, []); // evicts b, the least recently used
  assert.ok(!(bounded.authenticate(a, []) instanceof Promise));
  assert.ok(!(bounded.authenticate(c, []) instanceof Promise));
  const again = bounded.authenticate(b, []);
  assert.ok(again instanceof Promise, 'b was evicted: read from the store again');
  assert.equal((await again).sessionId, 'b');
  // Revoking an evicted session, a cached one, and the user of all of them, each counts on the next call.
  await store.revokeSession('a', clock());
  await assert.rejects(async () => bounded.authenticate(a, []), InvalidTokenError);
  await store.updateUser(userId, { disabled: true }, clock());
  await assert.rejects(async () => bounded.authenticate(b, []), InactiveUserError);
  await assert.rejects(async () => bounded.authenticate(c, []), InactiveUserError);
});

test('createAuthService({ sessionCacheSize }) bounds the bearer check\'s cache', async () => {
  const service = createAuthService({ store, secretKey: SECRET, issuer: ISSUER, clock, sessionCacheSize: 1 });
  const [a, b] = [await loggedIn({ sid: 'a' }), await loggedIn({ sid: 'b' })];
  await service.authenticate(a, []);
  assert.ok(!(service.authenticate(a, []) instanceof Promise), 'a is cached');
  await service.authenticate(b, []);
  const again = service.authenticate(a, []);
  assert.ok(again instanceof Promise, 'b took the only place: a is read again');
  await again;
});

test('records the use of a session at most once a minute', async () => {
  const token = await loggedIn();
  const lastUsed = async () => (await store.getAuthState('session-1'))!.session.lastUsedAt;
  // Every use the bearer check asks the store to record.
  const touched: number[] = [];
  const touchSession = store.touchSession.bind(store);
  store.touchSession = (id, at) => (touched.push(at), touchSession(id, at));
  clock.advance(61_000);
  await auth.authenticate(token, []);
  await waitFor(async () => (await lastUsed()) === START + 61_000);
  clock.advance(30_000);
  await auth.authenticate(token, []);
  clock.advance(31_000);
  await auth.authenticate(token, []);
  // Uses are written in batches (store/session-touches.ts): wait for the last one.
  await waitFor(async () => (await lastUsed()) !== START + 61_000);
  assert.equal(await lastUsed(), START + 122_000);
  assert.deepEqual(touched, [START + 61_000, START + 122_000], 'the use at +91 s was not recorded');
});

/** Polls a condition that a background write makes true (bounded: 200 tries). */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail('condition not met');
}

test('refuses a token whose aud does not name the audience asked for, or by default the issuer (SPEC §7.4)', async () => {
  await loggedIn();
  const forApi = tokens.issue({ sub: userId, sid: 'session-1', scope: ['me'], audience: ['https://api.example.com'] }).token;
  await assert.rejects(async () => auth.authenticate(forApi, []), InvalidTokenError, 'the default audience is the issuer');
  assert.equal((await auth.authenticate(forApi, [], 'user', 'https://api.example.com')).user.username, 'jane');
  const own = tokens.issue({ sub: userId, sid: 'session-1', scope: ['me'] }).token;
  assert.equal((await auth.authenticate(own, [])).user.username, 'jane');
  await assert.rejects(async () => auth.authenticate(own, [], 'user', 'https://api.example.com'), InvalidTokenError, 'a token for Portcullis is not for the API');
});

test('refuses a correctly signed token that names no session', async () => {
  await loggedIn();
  await assert.rejects(async () => auth.authenticate(tokens.issue({ sub: userId, scope: ['me'] }).token, []), InvalidTokenError);
});
