/**
 * The resource-server library against a real Portcullis process (the compiled build, EdDSA key
 * pairs, RFC 8414 metadata and JWKS over real HTTP): it accepts Portcullis's tokens for its
 * audience and refuses the rest; a key rotated in by `portcullis keys rotate` (another real
 * process) is fetched once, on its first token, and unknown kids do not make it fetch again
 * within the interval. The feed here is the stand-in of test/ssf-transmitter.ts (a test pushes
 * the SET by hand), telling of sessions that really ended at Portcullis; Portcullis's own feed
 * is followed end to end in test/revocation-everywhere.test.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAuthService } from '../src/core/auth-service.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { SESSION_REVOKED } from '../src/resource-server/event-types.ts';
import { createRemoteVerifier, InsufficientScopeError, InvalidTokenError, type RemoteVerifier, type RemoteVerifierOptions } from '../src/resource-server/index.ts';
import { openStore } from '../src/store/index.ts';
import { CHEAP_ARGON2, tempDir, TEST_SECRET } from './helpers.ts';
import { freePort, measureUntil, runToExit, SERVER_ENV, spawnServer, type ServerProcess } from './spawn-server.ts';
import { API, RECEIVER, startTransmitter, type Transmitter } from './ssf-transmitter.ts';

const ANALYST = { username: 'analyst', password: 'analyst-password' };
const PROPAGATION_BOUND_MS = 1_000;
const EDDSA = { PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA' };

const kidOf = (token: string): unknown => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid?: unknown }).kid;
const withKid = (token: string, kid: string): string => {
  const [header, payload, signature] = token.split('.');
  const patched = { ...(JSON.parse(Buffer.from(header!, 'base64url').toString()) as object), kid };
  return `${Buffer.from(JSON.stringify(patched)).toString('base64url')}.${payload}.${signature}`;
};

describe('createRemoteVerifier against a real Portcullis (EdDSA)', () => {
  const dir = tempDir('portcullis-remote-verifier-');
  const databaseUrl = `sqlite:${join(dir.path, 'portcullis.db')}`;
  let portcullis: ServerProcess;
  let transmitter: Transmitter;
  let verifier: RemoteVerifier;
  let analystId: string;
  const jwksFetches: string[] = [];
  let options: RemoteVerifierOptions;

  before(async () => {
    const store = await openStore(databaseUrl);
    try {
      await store.migrate();
      const seeding = createAuthService({ store, secretKey: TEST_SECRET, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, scopes: { me: 'Me.', admin: 'Admin.', 'reports:read': 'Read reports.' } });
      analystId = (await seeding.createUser({ ...ANALYST, scopes: ['me', 'reports:read'] })).id;
    } finally {
      await store.close();
    }
    const port = await freePort();
    portcullis = await spawnServer({
      databaseUrl,
      port,
      env: { ...EDDSA, PORTCULLIS_ISSUER: `http://127.0.0.1:${port}`, PORTCULLIS_AUDIENCES: JSON.stringify([API]), PORTCULLIS_SCOPES: JSON.stringify({ 'reports:read': 'Read reports.' }) },
    });
    transmitter = await startTransmitter();
    options = {
      issuer: portcullis.url,
      audience: API,
      ...RECEIVER,
      transmitter: transmitter.url,
      // Counts the key-set fetches on the wire.
      fetch: (input, init) => {
        if (String(input).endsWith('/.well-known/jwks.json')) jwksFetches.push(String(input));
        return fetch(input, init);
      },
    };
    verifier = await createRemoteVerifier(options);
  });
  after(async () => {
    await verifier?.close();
    await transmitter?.close();
    await portcullis?.stop();
    dir.remove();
  });

  async function login(extra: [string, string][] = [['resource', API]]): Promise<string> {
    const response = await fetch(`${portcullis.url}/token`, {
      method: 'POST',
      body: new URLSearchParams([['username', ANALYST.username], ['password', ANALYST.password], ...extra]),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200, await response.clone().text());
    return ((await response.json()) as { access_token: string }).access_token;
  }

  async function reason(token: string, scopes?: readonly string[], by = verifier): Promise<string> {
    const error = await by.verify(token, scopes).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    if (error instanceof InsufficientScopeError) return 'insufficient-scope';
    assert.ok(error instanceof InvalidTokenError, String(error));
    return error.reason;
  }

  test('accepts a Portcullis token asked for its audience, with the RFC 9068 claims', async () => {
    const claims = await verifier.verify(await login(), ['reports:read']);
    assert.equal(claims.iss, portcullis.url);
    assert.equal(claims.aud, API);
    assert.equal(claims.sub, analystId);
    assert.equal(claims.client_id, 'portcullis');
    assert.deepEqual(claims.scopes, ['me', 'reports:read']);
    assert.equal(typeof claims.sid, 'string');
    assert.equal(claims.exp - claims.iat, 1800);
  });

  test('refuses a token for Portcullis itself, a tampered one, an expired one, and one without the scope (403)', async () => {
    assert.equal(await reason(await login([])), 'audience', 'no resource: aud is the issuer');
    const token = await login();
    const [header, payload, signature] = token.split('.');
    const widened = Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(payload!, 'base64url').toString()) as object), scope: 'me reports:read admin' })).toString('base64url');
    assert.equal(await reason(`${header}.${widened}.${signature}`), 'signature');
    assert.equal(await reason(`${header}.${payload}.${signature!.slice(0, -4)}AAAA`), 'signature');
    assert.equal(await reason(await login([['resource', API], ['scope', 'me']]), ['reports:read']), 'insufficient-scope');
    // Two hours on: the token (30 minutes) has expired.
    const later = await createRemoteVerifier({ ...options, clock: () => Date.now() + 2 * 3_600_000 });
    try {
      assert.equal(await reason(token, [], later), 'expired');
    } finally {
      await later.close();
    }
  });

  test('a session ended at Portcullis (logout), told by the feed, is refused within 1 s', async () => {
    const token = await login([['resource', API], ['resource', portcullis.url]]);
    const { sid } = await verifier.verify(token);
    assert.ok(sid);
    const logout = await fetch(`${portcullis.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(logout.status, 204);
    await transmitter.push(SESSION_REVOKED, sid);
    const delay = await measureUntil(async () => (await verifier.verify(token).then(() => false, (e: unknown) => e instanceof InvalidTokenError && e.reason === 'session-ended')), 5 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `the ended session was accepted ${Math.round(delay)} ms after the SET`);
    assert.equal((await verifier.verify(await login())).sub, analystId, 'a new session passes');
  });

  test('after `portcullis keys rotate`, the first token of the new key fetches the JWKS once; unknown kids within 10 s fetch nothing more', async () => {
    const old = await login();
    await verifier.verify(old);
    const rotated = await runToExit(['keys', 'rotate'], { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...SERVER_ENV, ...EDDSA, DATABASE_URL: databaseUrl });
    assert.equal(rotated.code, 0, rotated.output);
    // The running server re-reads its keys within a second (SPEC §3).
    let fresh = '';
    await measureUntil(async () => kidOf((fresh = await login())) !== kidOf(old), 10_000);
    const before = jwksFetches.length;
    assert.equal((await verifier.verify(fresh)).sub, analystId);
    assert.equal(jwksFetches.length, before + 1, 'one fetch for the new kid');
    assert.equal((await verifier.verify(await login())).sub, analystId, 'the next token of that key needs no fetch');
    for (const kid of ['forged-1', 'forged-2', 'forged-3']) assert.equal(await reason(withKid(fresh, kid)), 'unknown-key');
    assert.equal(jwksFetches.length, before + 1, 'unknown kids inside the interval fetch nothing');
    assert.equal((await verifier.verify(old)).sub, analystId, 'the previous key still verifies its tokens');
  });
});
