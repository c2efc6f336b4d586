/**
 * The resource-server library (`portcullis/resource-server`, SPEC §8) against a stand-in
 * authorization server and event transmitter over real HTTP (test/ssf-transmitter.ts: SETs
 * and access tokens signed with `jose`): what the feed ends is refused within a second; SETs
 * are acknowledged, redelivered ones applied once; forged SETs are reported, never applied;
 * an unreachable feed fails closed after `maxStaleness` (or falls back to introspection) and
 * recovers by itself; memory stays bounded; tokens are checked as RFC 9068 §4 asks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ACCOUNT_DISABLED, ACCOUNT_PURGED, CREDENTIAL_CHANGE, KEY_REVOKED, SESSION_REVOKED } from '../src/resource-server/event-types.ts';
import {
  createRemoteVerifier,
  InactiveUserError,
  InsufficientScopeError,
  InvalidTokenError,
  VerifierUnavailableError,
  type RemoteVerifier,
  type RemoteVerifierOptions,
} from '../src/resource-server/index.ts';
import { measureUntil } from './spawn-server.ts';
import { API, RECEIVER, startTransmitter, type Transmitter } from './ssf-transmitter.ts';

/** SPEC §8: an ended session is refused within this bound. */
const PROPAGATION_BOUND_MS = 1_000;
const now = (): number => Math.floor(Date.now() / 1000);

function options(transmitter: Transmitter, extra: Partial<RemoteVerifierOptions> = {}): RemoteVerifierOptions {
  return { issuer: transmitter.url, audience: API, ...RECEIVER, ...extra };
}

/** Resolves with the error `verify` rejects with (fails if it resolves). */
async function refusal(verifier: RemoteVerifier, token: string, scopes?: readonly string[]): Promise<Error> {
  try {
    await verifier.verify(token, scopes);
  } catch (error) {
    return error as Error;
  }
  assert.fail('verify accepted the token');
}

async function refusedAs(verifier: RemoteVerifier, token: string, reason: string): Promise<boolean> {
  const outcome = await verifier.verify(token).then(
    () => undefined,
    (error: unknown) => error,
  );
  return outcome instanceof InvalidTokenError && outcome.reason === reason;
}

describe('the security event feed (a stand-in transmitter over real HTTP)', () => {
  let transmitter: Transmitter;
  let verifier: RemoteVerifier;
  const feedErrors: unknown[] = [];

  before(async () => {
    transmitter = await startTransmitter({ authorizationServer: true });
    verifier = await createRemoteVerifier(options(transmitter, { onFeedError: (error) => feedErrors.push(error) }));
  });
  after(async () => {
    await verifier?.close();
    await transmitter?.close();
  });

  test('a pushed session-revoked SET makes verify refuse that session within 1 s; other sessions pass; the SET is acknowledged', async () => {
    const ended = await transmitter.accessToken({ sid: 'session-ending' });
    const other = await transmitter.accessToken({ sid: 'session-staying' });
    assert.equal((await verifier.verify(ended, ['reports:read'])).sid, 'session-ending');
    const jti = await transmitter.push(SESSION_REVOKED, 'session-ending');
    const delay = await measureUntil(() => refusedAs(verifier, ended, 'session-ended'), 5 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `the ended session was still accepted ${Math.round(delay)} ms after the SET was pushed`);
    const error = await refusal(verifier, ended);
    assert.equal((error as InvalidTokenError).statusCode, 401);
    assert.deepEqual((error as InvalidTokenError).headers(), { 'www-authenticate': 'Bearer error="invalid_token"' });
    assert.equal((await verifier.verify(other)).sid, 'session-staying');
    await measureUntil(async () => transmitter.acks.some((acks) => acks.includes(jti)), 5_000);
    assert.ok(transmitter.authorizations.every((header) => header.startsWith('Basic ')), 'the receiver authenticates with HTTP Basic');
  });

  test('credential-change, account-disabled and account-purged end the tokens of that user issued at or before the event; later tokens pass', async () => {
    const before = now() - 60;
    const [changed, disabled, purged] = await Promise.all(['user-changed', 'user-disabled', 'user-purged'].map((sub) => transmitter.accessToken({ sub, sid: `${sub}-session`, iat: before, exp: before + 1800 })));
    const eventTime = now();
    await transmitter.push(CREDENTIAL_CHANGE, 'user-changed', { credential_type: 'password', change_type: 'update' });
    await transmitter.push(ACCOUNT_DISABLED, 'user-disabled');
    await transmitter.push(ACCOUNT_PURGED, 'user-purged');
    await measureUntil(() => refusedAs(verifier, purged!, 'account-purged'), 5_000);
    assert.ok(await refusedAs(verifier, changed!, 'credentials-changed'));
    const inactive = await refusal(verifier, disabled!);
    assert.ok(inactive instanceof InactiveUserError, String(inactive));
    assert.equal(inactive.statusCode, 400);
    assert.equal(inactive.detail, 'Inactive user');
    // A token issued after the event (a new login with the new password) passes.
    const later = await transmitter.accessToken({ sub: 'user-changed', sid: 'new-session', iat: eventTime + 2 });
    assert.equal((await verifier.verify(later)).sub, 'user-changed');
  });

  test('key-revoked: every token signed with that key is refused, tokens of other keys pass', async () => {
    const [first, second] = transmitter.tokenKeys;
    const doomed = await transmitter.accessToken({ sid: 'by-second-key' }, {}, second);
    const kept = await transmitter.accessToken({ sid: 'by-first-key' }, {}, first);
    assert.equal((await verifier.verify(doomed)).sid, 'by-second-key');
    await transmitter.push(KEY_REVOKED, second!.kid, { kid: second!.kid });
    await measureUntil(() => refusedAs(verifier, doomed, 'key-revoked'), 5_000);
    assert.equal((await verifier.verify(kept)).sid, 'by-first-key');
  });

  test('a SET delivered again after it was acknowledged is applied once more, idempotently, and acknowledged again', async () => {
    const { jti, set } = await transmitter.sign(SESSION_REVOKED, 'session-twice');
    transmitter.enqueue(jti, set);
    const acked = (): number => transmitter.acks.filter((acks) => acks.includes(jti)).length;
    await measureUntil(async () => acked() === 1, 5_000);
    const counts = verifier.status();
    transmitter.enqueue(jti, set); // as if the acknowledgement had been lost
    await measureUntil(async () => acked() === 2, 5_000);
    assert.equal(verifier.status().endedSessions, counts.endedSessions, 'the same session is not counted twice');
    assert.ok(await refusedAs(verifier, await transmitter.accessToken({ sid: 'session-twice' }), 'session-ended'));
  });

  test('forged SETs — another key, another issuer, another audience, another type — are reported in setErrs and never applied', async () => {
    const forged = [
      { sid: 'forged-key', err: 'invalid_key', overrides: { key: transmitter.strangerKey } },
      { sid: 'forged-issuer', err: 'invalid_issuer', overrides: { iss: 'https://evil.example' } },
      { sid: 'forged-audience', err: 'invalid_audience', overrides: { aud: 'another-receiver' } },
      { sid: 'forged-type', err: 'invalid_request', overrides: { typ: 'JWT' } },
    ];
    const jtis: string[] = [];
    for (const { sid, overrides } of forged) jtis.push(await transmitter.push(SESSION_REVOKED, sid, {}, overrides));
    const reported = (): Record<string, { err: string }> => Object.assign({}, ...transmitter.setErrs);
    await measureUntil(async () => jtis.every((jti) => jti in reported()), 5_000);
    forged.forEach(({ err }, i) => assert.equal(reported()[jtis[i]!]!.err, err, forged[i]!.sid));
    for (const { sid } of forged) assert.equal((await verifier.verify(await transmitter.accessToken({ sid }))).sid, sid, `${sid} still passes`);
    assert.ok(!transmitter.acks.some((acks) => acks.some((jti) => jtis.includes(jti))), 'a forged SET is never acknowledged as processed');
  });

  test('verify checks tokens as RFC 9068 §4 asks: type, issuer, audience, time, lifetime, signature, key, algorithm and scopes', async () => {
    const t = transmitter;
    assert.equal((await verifier.verify(await t.accessToken(), ['reports:read', 'me'])).sub, 'user-1');
    const cases: [string, Promise<string>, string][] = [
      ['typ JWT', t.accessToken({}, { typ: 'JWT' }), 'type'],
      ['no typ', t.accessToken({}, { typ: undefined }), 'type'],
      ['another issuer', t.accessToken({ iss: 'https://evil.example' }), 'issuer'],
      ['another audience', t.accessToken({ aud: 'https://billing.example.com' }), 'audience'],
      ['expired beyond the leeway', t.accessToken({ iat: now() - 1900, exp: now() - 6 }), 'expired'],
      ['issued in the future', t.accessToken({ iat: now() + 60, exp: now() + 1860 }), 'not-yet-valid'],
      ['not before a later time', t.accessToken({ nbf: now() + 60 }), 'not-yet-valid'],
      ['living longer than maxTokenLifetime', t.accessToken({ exp: now() + 7200 }), 'lifetime'],
      ['no client_id', t.accessToken({ client_id: undefined }), 'claims'],
      ['an unknown kid', t.accessToken({}, { kid: 'nobody' }), 'unknown-key'],
    ];
    for (const [why, token, reason] of cases) {
      const error = await refusal(verifier, await token);
      assert.ok(error instanceof InvalidTokenError, `${why}: ${String(error)}`);
      assert.equal(error.reason, reason, why);
    }
    const good = await t.accessToken();
    const [header, payload] = good.split('.');
    const forgeries: [string, string][] = [
      ['a tampered payload', `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), scope: 'admin' })).toString('base64url')}.${good.split('.')[2]}`],
      ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: t.tokenKeys[0]!.kid })).toString('base64url')}.${payload}.`],
      ['HS256 keyed with the public key (RFC 8725 §2.1)', await hmacWithPublicKey(good, JSON.stringify(t.tokenKeys[0]!.jwk))],
      ['not a JWT', 'not.a.jwt'],
      ['two parts', `${header}.${payload}`],
    ];
    for (const [why, token] of forgeries) assert.ok((await refusal(verifier, token)) instanceof InvalidTokenError, why);
    const scope = await refusal(verifier, good, ['admin']);
    assert.ok(scope instanceof InsufficientScopeError);
    assert.equal(scope.statusCode, 403);
    assert.deepEqual(scope.headers(), { 'www-authenticate': 'Bearer error="insufficient_scope", scope="admin"' });
  });

  test('an unknown kid fetches the JWKS again at most once per 10 s', async () => {
    const before = transmitter.counts.jwksFetches;
    for (const kid of ['unknown-1', 'unknown-2', 'unknown-3']) {
      assert.ok(await refusedAs(verifier, await transmitter.accessToken({}, { kid }), 'unknown-key'));
    }
    assert.ok(transmitter.counts.jwksFetches - before <= 1, `${transmitter.counts.jwksFetches - before} fetches for three unknown kids`);
    assert.equal(verifier.status().jwksFetches, transmitter.counts.jwksFetches);
  });

  test('close() aborts the held poll and ends the loop', async () => {
    const own = await startTransmitter({ authorizationServer: true });
    try {
      const closing = await createRemoteVerifier(options(own));
      await measureUntil(async () => own.counts.held > 0, 5_000);
      await closing.close();
      // close() resolves once the loop has ended; the held poll's connection is gone.
      await measureUntil(async () => own.heldNow() === 0, 5_000);
      const polls = own.counts.polls;
      await own.push(SESSION_REVOKED, 'after-close');
      assert.equal(own.counts.polls, polls, 'no poll after close()');
    } finally {
      await own.close();
    }
  });
});

/** A token re-signed with HS256 using `secret` (the public JWK) as the HMAC key. */
async function hmacWithPublicKey(token: string, secret: string): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const [, payload] = token.split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: 'token-key-1' })).toString('base64url');
  return `${header}.${payload}.${createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')}`;
}

describe('an unreachable feed', () => {
  test('fails closed with 503 and Retry-After after maxStaleness, keeps refusing what it knows, and recovers by itself', async (t) => {
    const transmitter = await startTransmitter({ authorizationServer: true });
    const errors: unknown[] = [];
    const verifier = await createRemoteVerifier(options(transmitter, { maxStaleness: 1_000, onFeedError: (error) => errors.push(error) }));
    t.after(async () => {
      await verifier.close();
      await transmitter.close();
    });
    const token = await transmitter.accessToken({ sid: 'live' });
    const revokedLater = await transmitter.accessToken({ sid: 'revoked-while-down' });
    await transmitter.push(SESSION_REVOKED, 'known-ended');
    const known = await transmitter.accessToken({ sid: 'known-ended' });
    await measureUntil(() => refusedAs(verifier, known, 'session-ended'), 5_000);
    assert.equal((await verifier.verify(token)).sid, 'live');

    transmitter.setDown(true);
    await measureUntil(async () => (await verifier.verify(token).catch((error: unknown) => error)) instanceof VerifierUnavailableError, 15_000);
    const unavailable = await refusal(verifier, token);
    assert.ok(unavailable instanceof VerifierUnavailableError);
    assert.equal(unavailable.statusCode, 503);
    assert.deepEqual(unavailable.headers(), { 'retry-after': '1' });
    assert.equal(verifier.status().synced, false);
    assert.ok(errors.length > 0, 'onFeedError heard of the failed polls');
    assert.ok(await refusedAs(verifier, known, 'session-ended'), 'what is known to be ended stays refused (401, not 503)');
    assert.ok((await refusal(verifier, `${token}x`)) instanceof InvalidTokenError, 'a forged token is still 401');

    // A session ended while the feed was down is delivered once it is back (its queue kept it).
    await transmitter.push(SESSION_REVOKED, 'revoked-while-down');
    transmitter.setDown(false);
    await measureUntil(async () => (await verifier.verify(token).then(() => true, () => false)), 20_000);
    assert.equal(verifier.status().synced, true);
    assert.ok(await refusedAs(verifier, revokedLater, 'session-ended'));
  });

  test("with fallback 'introspection', a stale feed asks introspection per token (HTTP Basic, cached briefly) until the feed is back", async (t) => {
    const transmitter = await startTransmitter({ authorizationServer: true, introspection: true });
    const verifier = await createRemoteVerifier(options(transmitter, { maxStaleness: 1_000, fallback: 'introspection' }));
    t.after(async () => {
      await verifier.close();
      await transmitter.close();
    });
    const active = await transmitter.accessToken({ sid: 'active' });
    const inactive = await transmitter.accessToken({ sid: 'inactive' });
    const failing = await transmitter.accessToken({ sid: 'failing' });
    transmitter.introspection = (token) => (token === inactive ? false : token === failing ? 'fail' : true);
    assert.equal((await verifier.verify(inactive)).sid, 'inactive', 'in sync: no introspection');
    assert.equal(transmitter.counts.introspections, 0);

    transmitter.setDown(true);
    await measureUntil(() => refusedAs(verifier, inactive, 'introspection'), 15_000);
    assert.equal((await verifier.verify(active, ['reports:read'])).sid, 'active');
    const asked = transmitter.counts.introspections;
    assert.equal((await verifier.verify(active)).sid, 'active');
    assert.equal(transmitter.counts.introspections, asked, 'the answer is cached briefly');
    assert.ok((await refusal(verifier, failing)) instanceof VerifierUnavailableError, 'introspection failing: 503');
    const basic = transmitter.authorizations.at(-1)!;
    assert.match(basic, /^Basic /);
    assert.equal(Buffer.from(basic.slice(6), 'base64').toString(), `${RECEIVER.clientId}:${new URLSearchParams({ v: RECEIVER.clientSecret }).toString().slice(2)}`, 'RFC 6749 §2.3.1: id and secret form-urlencoded');

    transmitter.setDown(false);
    await measureUntil(async () => verifier.status().synced, 20_000);
    const fresh = await transmitter.accessToken({ sid: 'after-recovery' });
    const before = transmitter.counts.introspections;
    assert.equal((await verifier.verify(fresh)).sid, 'after-recovery');
    assert.equal(transmitter.counts.introspections, before, 'in sync again: no introspection');
  });
});

describe('memory stays bounded', () => {
  test('past maxEntries the oldest entries are evicted, and tokens issued before them become suspect (refused, or introspected)', async (t) => {
    const transmitter = await startTransmitter({ authorizationServer: true });
    const verifier = await createRemoteVerifier(options(transmitter, { maxEntries: 3 }));
    t.after(async () => {
      await verifier.close();
      await transmitter.close();
    });
    const sids = ['s1', 's2', 's3', 's4', 's5'];
    const tokens = await Promise.all(sids.map((sid) => transmitter.accessToken({ sid, iat: now() - 30 })));
    const jtis: string[] = [];
    for (const sid of sids) jtis.push(await transmitter.push(SESSION_REVOKED, sid));
    await measureUntil(async () => jtis.every((jti) => transmitter.acks.some((acks) => acks.includes(jti))), 5_000);
    const status = verifier.status();
    assert.equal(status.endedSessions, 3);
    assert.equal(status.evicted, 2);
    assert.ok(await refusedAs(verifier, tokens[4]!, 'session-ended'), 'the newest entries are kept');
    assert.ok(await refusedAs(verifier, tokens[0]!, 'suspect'), 'an evicted session is still refused');
    assert.ok(await refusedAs(verifier, await transmitter.accessToken({ sid: 'old-but-live', iat: now() - 30 }), 'suspect'), 'older tokens are suspect');
    const fresh = await transmitter.accessToken({ sid: 'fresh', iat: now() + 2 });
    assert.equal((await verifier.verify(fresh)).sid, 'fresh', 'a token issued after the evicted events passes');
  });
});

describe('start-up', () => {
  test('fails clearly on bad options, a metadata naming another issuer, no poll delivery, or a wrong client secret', async (t) => {
    const transmitter = await startTransmitter({ authorizationServer: true });
    const lying = await startTransmitter({ authorizationServer: true, issuerInMetadata: 'https://auth.example.com' });
    const pushOnly = await startTransmitter({ authorizationServer: true, deliveryMethod: 'urn:ietf:rfc:8935' });
    t.after(() => Promise.all([transmitter.close(), lying.close(), pushOnly.close()]));
    await assert.rejects(createRemoteVerifier({ ...options(transmitter), maxStaleness: 0 }), /maxStaleness must be a positive number/);
    await assert.rejects(createRemoteVerifier({ ...options(transmitter), audience: '' }), /audience must be a non-empty string/);
    await assert.rejects(createRemoteVerifier({ ...options(transmitter), fallback: 'open' as 'fail-closed' }), /fallback must be/);
    await assert.rejects(createRemoteVerifier({ ...options(transmitter), fallback: 'introspection' }), /lists none/);
    await assert.rejects(createRemoteVerifier(options(lying)), /names the issuer "https:\/\/auth.example.com"/);
    await assert.rejects(createRemoteVerifier(options(pushOnly)), /offers no poll delivery/);
    await assert.rejects(createRemoteVerifier({ ...options(transmitter), clientSecret: 'wrong' }), /polling the security event feed.*HTTP 401/);
    await assert.rejects(createRemoteVerifier({ ...options(transmitter), issuer: 'http://auth.example.com' }), /must use https/);
  });
});
