/** RFC 6238 arithmetic as Portcullis configures it: the RFC's own test vectors, the ±1 step window, code shapes, sealing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateTotpSecret, isTotpCodeShape, matchTotpStep, openTotpSecret, sealTotpSecret, totpCode, totpIssuerName, totpStep, totpUri } from './totp.ts';

// RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890" (base32 below); the
// 8-digit codes of the table end in the 6-digit codes (RFC 4226 §5.3: the last digits).
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const RFC_VECTORS: [seconds: number, code: string][] = [
  [59, '287082'],
  [1111111109, '081804'],
  [1111111111, '050471'],
  [1234567890, '005924'],
  [2000000000, '279037'],
  [20000000000, '353130'],
];
const SECRET_KEY = 'test-secret-key-that-is-long-enough-0123456789';

test('codes are the RFC 6238 Appendix B test vectors (SHA-1, 30 s, last 6 digits)', () => {
  for (const [seconds, code] of RFC_VECTORS) {
    assert.equal(totpCode(RFC_SECRET, seconds * 1000), code, `T=${seconds}`);
    assert.equal(matchTotpStep(RFC_SECRET, code, seconds * 1000), Math.floor(seconds / 30), `T=${seconds}`);
  }
});

test('a code is accepted one step early or late (RFC 6238 §5.2 drift), and not two', () => {
  const now = 1_111_111_111_000;
  const step = totpStep(now);
  assert.equal(matchTotpStep(RFC_SECRET, totpCode(RFC_SECRET, now - 30_000), now), step - 1);
  assert.equal(matchTotpStep(RFC_SECRET, totpCode(RFC_SECRET, now + 30_000), now), step + 1);
  const farPast = totpCode(RFC_SECRET, now - 60_000);
  const farFuture = totpCode(RFC_SECRET, now + 60_000);
  const near = new Set([-1, 0, 1].map((d) => totpCode(RFC_SECRET, now + d * 30_000)));
  if (!near.has(farPast)) assert.equal(matchTotpStep(RFC_SECRET, farPast, now), undefined);
  if (!near.has(farFuture)) assert.equal(matchTotpStep(RFC_SECRET, farFuture, now), undefined);
});

test('only six ASCII digits are shaped like a code', () => {
  for (const good of ['000000', '123456']) assert.equal(isTotpCodeShape(good), true, good);
  for (const bad of ['', '12345', '1234567', '123 456', ' 123456', '12345a', '１２３４５６', '123456\n', '-12345']) {
    assert.equal(isTotpCodeShape(bad), false, JSON.stringify(bad));
    assert.equal(matchTotpStep(RFC_SECRET, bad, 59_000), undefined);
  }
});

test('a new secret is 160 random bits in base32, different every time', () => {
  const a = generateTotpSecret();
  assert.match(a, /^[A-Z2-7]{32}$/);
  assert.notEqual(a, generateTotpSecret());
});

test('the otpauth URI carries the secret, the issuer and the parameters an app needs', () => {
  const uri = new URL(totpUri({ secret: RFC_SECRET, issuer: totpIssuerName('https://auth.example.com:8443/x'), account: 'jane:doe' }));
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.host, 'totp');
  assert.equal(decodeURIComponent(uri.pathname), '/auth.example.com:jane:doe');
  assert.equal(uri.searchParams.get('secret'), RFC_SECRET);
  assert.equal(uri.searchParams.get('issuer'), 'auth.example.com');
  assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
  assert.equal(uri.searchParams.get('digits'), '6');
  assert.equal(uri.searchParams.get('period'), '30');
  assert.equal(totpIssuerName('urn:portcullis'), 'Portcullis');
});

test('a sealed secret does not show the secret, and opens only for its user under its key', () => {
  const sealed = sealTotpSecret(RFC_SECRET, 'user-1', SECRET_KEY);
  assert.ok(!sealed.includes(RFC_SECRET));
  assert.notEqual(sealed, sealTotpSecret(RFC_SECRET, 'user-1', SECRET_KEY), 'a fresh IV each time');
  assert.equal(openTotpSecret(sealed, 'user-1', SECRET_KEY), RFC_SECRET);
  assert.equal(openTotpSecret(sealed, 'user-2', SECRET_KEY), undefined);
  assert.equal(openTotpSecret(sealed, 'user-1', `${SECRET_KEY}-other`), undefined);
  assert.equal(openTotpSecret('garbage', 'user-1', SECRET_KEY), undefined);
});
