import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import { ACCESS_TOKEN_TYPE, createAccessTokens, hmacKeySet, LEEWAY_SECONDS, type KeySet } from './access-token.ts';
import { createManualClock } from './clock.ts';
import { InvalidTokenError } from './errors.ts';

const SECRET = 'access-token-unit-test-secret-0123456789abcdef';
const ISSUER = 'https://auth.example.com';
const START = Date.UTC(2030, 0, 1);
const TTL = 1800;

function setup(options: { issuer?: string | undefined; keys?: KeySet; audience?: string; clientId?: string } = {}) {
  const clock = createManualClock(START);
  const tokens = createAccessTokens({
    keys: options.keys ?? hmacKeySet(SECRET),
    issuer: 'issuer' in options ? options.issuer : ISSUER,
    ttlSeconds: TTL,
    clock,
    audience: options.audience,
    clientId: options.clientId,
  });
  return { clock, tokens };
}

/** Claims as Portcullis issues them at START, for tokens signed by hand. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = START / 1000;
  return { iss: ISSUER, exp: iat + TTL, aud: ISSUER, sub: 'user-1', client_id: 'portcullis', iat, jti: 'jti-1', scope: 'me', sid: 'session-1', ...overrides };
}

/** Signs exactly these claims (without `noTimestamp`, fast-jwt would add an `iat` where there is none), typ at+jwt unless told. */
const sign = (payload: Record<string, unknown>, options: { key?: string; algorithm?: string; typ?: string } = {}): string => {
  const algorithm = (options.algorithm ?? 'HS256') as 'HS256';
  return createSigner({ key: options.key ?? SECRET, algorithm, header: { alg: algorithm, typ: options.typ ?? ACCESS_TOKEN_TYPE }, noTimestamp: payload.iat === undefined })(payload);
};

/** An HS256 JWT of any payload and header, built by hand: fast-jwt's signer refuses ill-typed registered claims. */
const signRaw = (payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: ACCESS_TOKEN_TYPE }): string => {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
};

const refused = (verify: () => unknown, why: string): void => assert.throws(verify, InvalidTokenError, why);

describe('issuing', () => {
  test('an issued token verifies back to its subject, session, scopes and issuer', () => {
    const { tokens } = setup();
    const { token, expiresIn } = tokens.issue({ sub: 'user-1', sid: 'session-1', scope: ['me', 'items:read'] });
    const verified = tokens.verify(token);
    assert.equal(expiresIn, TTL);
    assert.deepEqual(
      { sub: verified.sub, sid: verified.sid, scope: verified.scope, scopes: verified.scopes, iss: verified.iss },
      { sub: 'user-1', sid: 'session-1', scope: 'me items:read', scopes: ['me', 'items:read'], iss: ISSUER },
    );
  });

  test('iat is the injected clock in seconds and exp is iat plus the TTL', () => {
    const { tokens } = setup();
    const { claims: issued } = tokens.issue({ sub: 'u', sid: 's', scope: [] });
    assert.equal(issued.iat, START / 1000);
    assert.equal(issued.exp, START / 1000 + TTL);
  });

  test('every token gets its own jti, even for the same session in the same second', () => {
    const { tokens } = setup();
    const jtis = new Set(Array.from({ length: 20 }, () => tokens.issue({ sub: 'u', sid: 's', scope: ['me'] }).claims.jti));
    assert.equal(jtis.size, 20);
  });

  test('without a configured issuer, the token names the origin it was requested at', () => {
    const { tokens } = setup({ issuer: undefined });
    const { token } = tokens.issue({ sub: 'u', sid: 's', scope: ['me'], origin: 'http://127.0.0.1:8123' });
    assert.equal(tokens.verify(token).iss, 'http://127.0.0.1:8123');
  });
});

describe('time, against the injected clock with 5 s of leeway', () => {
  test('accepts a token up to 5 s past its expiry and refuses it after, also when it verified before', () => {
    const { clock, tokens } = setup();
    const { token } = tokens.issue({ sub: 'u', sid: 's', scope: ['me'] });
    tokens.verify(token); // now in the verified cache: the time checks must still run
    clock.advance((TTL + LEEWAY_SECONDS - 1) * 1000);
    tokens.verify(token);
    clock.advance(1000);
    refused(() => tokens.verify(token), 'expired more than 5 s ago');
  });

  test('refuses a token issued more than 5 s in the future', () => {
    const { tokens } = setup();
    tokens.verify(sign(claims({ iat: START / 1000 + LEEWAY_SECONDS }))); // within the leeway
    refused(() => tokens.verify(sign(claims({ iat: START / 1000 + LEEWAY_SECONDS + 1 }))), 'iat in the future');
  });

  test('honours nbf with the same leeway (RFC 7519 §4.1.5)', () => {
    const { clock, tokens } = setup();
    const token = sign(claims({ nbf: START / 1000 + 60 }));
    refused(() => tokens.verify(token), 'before nbf');
    clock.advance((60 - LEEWAY_SECONDS) * 1000);
    assert.equal(tokens.verify(token).nbf, START / 1000 + 60);
  });
});

describe('signature, algorithm and issuer', () => {
  test('verifies a correctly signed token built by hand (the control for the refusals below)', () => {
    const { tokens } = setup();
    assert.equal(tokens.verify(sign(claims())).sub, 'user-1');
  });

  test('refuses a token signed with another secret', () => {
    const { tokens } = setup();
    refused(() => tokens.verify(sign(claims(), { key: 'another-secret-that-is-long-enough-0123456789' })), 'foreign key');
  });

  test('refuses a token whose payload was changed after signing', () => {
    const { tokens } = setup();
    const [header, , signature] = sign(claims()).split('.');
    const forged = Buffer.from(JSON.stringify(claims({ sub: 'admin-user' }))).toString('base64url');
    refused(() => tokens.verify(`${header}.${forged}.${signature}`), 'tampered payload');
  });

  test('pins the algorithm of the key: alg none and HS512 with the same secret are refused (RFC 8725 §3.1)', () => {
    const { tokens } = setup();
    refused(() => tokens.verify(sign(claims(), { algorithm: 'HS512' })), 'HS512');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: ACCESS_TOKEN_TYPE })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`;
    refused(() => tokens.verify(none), 'alg none');
  });

  test('refuses a token naming another issuer when one is configured', () => {
    const { tokens } = setup();
    refused(() => tokens.verify(sign(claims({ iss: 'https://evil.example.com' }))), 'foreign issuer');
  });

  test('refuses a token missing any RFC 9068 §2.2 claim or with a claim of the wrong type', () => {
    const { tokens } = setup();
    for (const claim of ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti', 'scope']) {
      refused(() => tokens.verify(sign(claims({ [claim]: undefined }))), `without ${claim}`);
    }
    assert.equal(tokens.verify(sign(claims({ sid: undefined }))).sid, undefined, 'a token without sid verifies, as a service token');
    refused(() => tokens.verify(signRaw(claims({ sid: 7 }))), 'sid as a number');
    assert.equal(tokens.verify(signRaw(claims())).sub, 'user-1', 'the hand-built control verifies');
    // `sid` names a user's session; the verifier lets a token without it through (the bearer
    // check refuses it: test/bearer.test.ts), so service tokens can be verified here too.
    assert.equal(tokens.verify(sign(claims({ sid: undefined }))).sid, undefined);
    refused(() => tokens.verify(signRaw(claims({ scope: ['me'] }))), 'scope as an array');
    refused(() => tokens.verify(signRaw(claims({ nbf: 'soon' }))), 'nbf as a string');
    refused(() => tokens.verify(signRaw(claims({ sub: 42 }))), 'sub as a number');
    refused(() => tokens.verify(signRaw(claims({ sid: 7 }))), 'sid as a number');
    refused(() => tokens.verify(signRaw(claims({ client_id: 7 }))), 'client_id as a number');
    refused(() => tokens.verify(signRaw(claims({ aud: 7 }))), 'aud as a number');
    refused(() => tokens.verify(signRaw(claims({ aud: [ISSUER, 7] }))), 'aud with a number in it');
    refused(() => tokens.verify(signRaw(claims({ aud: [] }))), 'aud empty');
  });

  test('refuses text that is not a three-part JWT, and tokens longer than 8 KiB', () => {
    const { tokens } = setup();
    for (const text of ['', 'abc', 'a.b', 'a.b.c.d', '...']) refused(() => tokens.verify(text), JSON.stringify(text));
    refused(() => tokens.verify(sign(claims({ padding: 'x'.repeat(8192) }))), 'oversized');
  });
});

describe('key rotation', () => {
  const key = (kid: string, secret: string) => ({ kid, alg: 'HS256' as const, privateKey: secret, publicKey: secret });
  const oldKey = key('old', 'old-secret-that-is-long-enough-0123456789abcd');
  const newKey = key('new', 'new-secret-that-is-long-enough-0123456789abcd');

  test('tokens of a key still listed for verifying keep working after the signing key changes', () => {
    const { tokens } = setup({ keys: { signing: oldKey, verifying: [oldKey] } });
    const before = tokens.issue({ sub: 'u', sid: 's', scope: ['me'] }).token;
    tokens.setKeys({ signing: newKey, verifying: [newKey, oldKey] });
    const after = tokens.issue({ sub: 'u', sid: 's', scope: ['me'] }).token;
    assert.equal(tokens.verify(before).sub, 'u');
    assert.equal(tokens.verify(after).sub, 'u');
    assert.equal(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid, 'new');
  });

  test('tokens of a key no longer listed stop verifying at once, even ones verified before', () => {
    const { tokens } = setup({ keys: { signing: oldKey, verifying: [oldKey] } });
    const token = tokens.issue({ sub: 'u', sid: 's', scope: ['me'] }).token;
    tokens.verify(token);
    tokens.setKeys({ signing: newKey, verifying: [newKey] });
    refused(() => tokens.verify(token), 'removed key');
  });
});

describe('the RFC 9068 profile (SPEC §7.4)', () => {
  const header = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
  const payload = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());

  test('the JOSE header says typ at+jwt (RFC 9068 §2.1), beside the algorithm', () => {
    const { tokens } = setup();
    const { token } = tokens.issue({ sub: 'u', sid: 's', scope: ['me'] });
    assert.deepEqual(header(token), { alg: 'HS256', typ: 'at+jwt' });
  });

  test('a token carries iss, exp, aud, sub, client_id, iat, jti, scope and sid, and nothing else', () => {
    const { tokens } = setup();
    const { token } = tokens.issue({ sub: 'user-1', sid: 'session-1', scope: ['me', 'admin'] });
    const body = payload(token);
    assert.deepEqual(Object.keys(body), ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti', 'scope', 'sid']);
    assert.deepEqual(
      { iss: body.iss, aud: body.aud, sub: body.sub, client_id: body.client_id, scope: body.scope, sid: body.sid },
      { iss: ISSUER, aud: ISSUER, sub: 'user-1', client_id: 'portcullis', scope: 'me admin', sid: 'session-1' },
    );
  });

  test('a token issued without a session has no sid', () => {
    const { tokens } = setup();
    assert.equal('sid' in payload(tokens.issue({ sub: 'svc', scope: [] }).token), false);
  });

  test('client_id is the registered client given, else the configured default, else portcullis', () => {
    assert.equal(payload(setup().tokens.issue({ sub: 'u', sid: 's', scope: [], clientId: 'x8Yk2' }).token).client_id, 'x8Yk2');
    assert.equal(payload(setup({ clientId: 'my-portal' }).tokens.issue({ sub: 'u', sid: 's', scope: [] }).token).client_id, 'my-portal');
    assert.equal(payload(setup().tokens.issue({ sub: 'u', sid: 's', scope: [] }).token).client_id, 'portcullis');
  });

  test('aud defaults to the configured audience, else the issuer, else the origin of the request', () => {
    assert.equal(payload(setup({ audience: 'https://api.example.com' }).tokens.issue({ sub: 'u', sid: 's', scope: [] }).token).aud, 'https://api.example.com');
    assert.equal(payload(setup().tokens.issue({ sub: 'u', sid: 's', scope: [], origin: 'http://10.0.0.5:8000' }).token).aud, ISSUER);
    const unnamed = setup({ issuer: undefined }).tokens.issue({ sub: 'u', sid: 's', scope: [], origin: 'http://10.0.0.5:8000' }).token;
    assert.equal(payload(unnamed).aud, 'http://10.0.0.5:8000');
    assert.equal(payload(unnamed).iss, 'http://10.0.0.5:8000');
  });

  test('aud is the resources asked for: a string for one, an array for several', () => {
    const { tokens } = setup();
    assert.equal(payload(tokens.issue({ sub: 'u', sid: 's', scope: [], audience: ['https://a.example'] }).token).aud, 'https://a.example');
    const two = tokens.issue({ sub: 'u', sid: 's', scope: [], audience: ['https://a.example', 'https://b.example'] }).token;
    assert.deepEqual(payload(two).aud, ['https://a.example', 'https://b.example']);
    assert.deepEqual(tokens.verify(two, { audience: 'https://b.example' }).audiences, ['https://a.example', 'https://b.example']);
  });

  test('verification refuses a token whose aud does not name the expected audience (RFC 9068 §4)', () => {
    const { tokens } = setup();
    const forApi = tokens.issue({ sub: 'u', sid: 's', scope: [], audience: ['https://api.example.com'] }).token;
    refused(() => tokens.verify(forApi), 'another audience than the issuer');
    refused(() => tokens.verify(forApi, { audience: 'https://other.example.com' }), 'another audience than asked');
    assert.equal(tokens.verify(forApi, { audience: 'https://api.example.com' }).sub, 'u');
    assert.equal(tokens.verify(forApi, { audience: false }).sub, 'u', 'the authorization server itself may look at any of its tokens');
    const own = tokens.issue({ sub: 'u', sid: 's', scope: [] }).token;
    assert.equal(tokens.verify(own).sub, 'u');
    refused(() => tokens.verify(own, { audience: 'https://api.example.com' }), 'a token for Portcullis at a resource server');
  });

  test('with a configured audience, verification expects it by default', () => {
    const { tokens } = setup({ audience: 'https://api.example.com' });
    assert.equal(tokens.verify(tokens.issue({ sub: 'u', sid: 's', scope: [] }).token).sub, 'u');
    refused(() => tokens.verify(sign(claims({ aud: ISSUER }))), 'the issuer is not the configured audience');
  });

  test('with no configured issuer, a token is for this deployment when its aud names its own iss, whatever origin verifies it', () => {
    const { tokens } = setup({ issuer: undefined });
    const viaA = tokens.issue({ sub: 'u', sid: 's', scope: [], origin: 'http://127.0.0.1:8000' }).token;
    assert.equal(tokens.verify(viaA).iss, 'http://127.0.0.1:8000');
    const forApi = tokens.issue({ sub: 'u', sid: 's', scope: [], origin: 'http://127.0.0.1:8000', audience: ['https://api.example.com'] }).token;
    refused(() => tokens.verify(forApi), 'a token for another resource');
  });

  test('refuses a token of another typ (RFC 9068 §4), accepting application/at+jwt in any case', () => {
    const { tokens } = setup();
    for (const typ of ['JWT', 'jwt', 'at+JWS', 'logout+jwt', 'secevent+jwt']) refused(() => tokens.verify(sign(claims(), { typ })), `typ ${typ}`);
    refused(() => tokens.verify(signRaw(claims(), { alg: 'HS256' })), 'no typ');
    for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT']) assert.equal(tokens.verify(sign(claims(), { typ })).sub, 'user-1', typ);
  });
});
