import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import { createAccessTokens, hmacKeySet, LEEWAY_SECONDS, type KeySet } from './access-token.ts';
import { createManualClock } from './clock.ts';
import { InvalidTokenError } from './errors.ts';

const SECRET = 'access-token-unit-test-secret-0123456789abcdef';
const ISSUER = 'https://auth.example.com';
const START = Date.UTC(2030, 0, 1);
const TTL = 1800;

function setup(options: { issuer?: string | undefined; keys?: KeySet } = {}) {
  const clock = createManualClock(START);
  const tokens = createAccessTokens({ keys: options.keys ?? hmacKeySet(SECRET), issuer: 'issuer' in options ? options.issuer : ISSUER, ttlSeconds: TTL, clock });
  return { clock, tokens };
}

/** Claims as Portcullis issues them at START, for tokens signed by hand. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = START / 1000;
  return { sub: 'user-1', sid: 'session-1', scope: 'me', iat, exp: iat + TTL, jti: 'jti-1', iss: ISSUER, ...overrides };
}

/** Signs exactly these claims (without `noTimestamp`, fast-jwt would add an `iat` where there is none). */
const sign = (payload: Record<string, unknown>, options: { key?: string; algorithm?: string } = {}): string =>
  createSigner({ key: options.key ?? SECRET, algorithm: (options.algorithm ?? 'HS256') as 'HS256', noTimestamp: payload.iat === undefined })(payload);

/** An HS256 JWT of any payload, built by hand: fast-jwt's signer refuses ill-typed registered claims. */
const signRaw = (payload: Record<string, unknown>): string => {
  const input = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
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
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`;
    refused(() => tokens.verify(none), 'alg none');
  });

  test('refuses a token naming another issuer when one is configured', () => {
    const { tokens } = setup();
    refused(() => tokens.verify(sign(claims({ iss: 'https://evil.example.com' }))), 'foreign issuer');
  });

  test('refuses a token missing any required claim or with a claim of the wrong type', () => {
    const { tokens } = setup();
    // `sid` is not among them: service tokens (client_credentials, SPEC §7.3) have none.
    for (const claim of ['sub', 'exp', 'iat', 'jti', 'iss']) {
      refused(() => tokens.verify(sign(claims({ [claim]: undefined }))), `without ${claim}`);
    }
    assert.equal(tokens.verify(sign(claims({ sid: undefined }))).sid, undefined, 'a token without sid verifies, as a service token');
    refused(() => tokens.verify(signRaw(claims({ sid: 7 }))), 'sid as a number');
    assert.equal(tokens.verify(signRaw(claims())).sub, 'user-1', 'the hand-built control verifies');
    refused(() => tokens.verify(signRaw(claims({ scope: ['me'] }))), 'scope as an array');
    refused(() => tokens.verify(signRaw(claims({ nbf: 'soon' }))), 'nbf as a string');
    refused(() => tokens.verify(signRaw(claims({ sub: 42 }))), 'sub as a number');
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
