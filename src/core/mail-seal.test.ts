import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mailSealKey, openMail, sealMail } from './mail-seal.ts';

const mail = { to: 'jane@example.com', subject: 'Reset your password', text: 'https://x.example/password-reset#token=SECRET', html: '<a href="https://x.example/password-reset#token=SECRET">x</a>' };

test('sealed bodies hide the link; the same key opens them; recipient and subject stay readable', () => {
  const key = mailSealKey('a-secret-key-that-is-long-enough-0123456789');
  const sealed = sealMail(key, mail);
  assert.equal(sealed.to, mail.to);
  assert.equal(sealed.subject, mail.subject);
  for (const body of [sealed.text, sealed.html]) {
    assert.match(body, /^pcl-sealed-v1:/);
    assert.doesNotMatch(body, /SECRET|https/);
  }
  assert.notEqual(sealMail(key, mail).text, sealed.text, 'a fresh IV each time');
  assert.deepEqual(openMail(key, sealed), mail);
});

test('another key or an altered body cannot be opened', () => {
  const sealed = sealMail(mailSealKey('a-secret-key-that-is-long-enough-0123456789'), mail);
  assert.throws(() => openMail(mailSealKey('another-secret-key-that-is-long-enough-01234'), sealed));
  const flipped = sealed.text.slice(0, -2) + (sealed.text.at(-2) === 'A' ? 'B' : 'A') + sealed.text.at(-1);
  assert.throws(() => openMail(mailSealKey('a-secret-key-that-is-long-enough-0123456789'), { ...sealed, text: flipped }));
});
