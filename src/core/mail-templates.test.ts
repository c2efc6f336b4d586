import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accountLink, escapeHtml, passwordResetMail, verificationMail } from './mail-templates.ts';

test('escapeHtml escapes the five characters that matter in HTML text and quoted attributes', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&amp;</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
  assert.equal(escapeHtml('plain text, ünïcode'), 'plain text, ünïcode');
});

test('accountLink keeps the public URL’s path prefix and puts the token in the fragment', () => {
  assert.equal(accountLink('https://auth.example.com', 'verify-email', 'TOKEN'), 'https://auth.example.com/verify-email#token=TOKEN');
  assert.equal(accountLink('https://auth.example.com/', 'verify-email', 'TOKEN'), 'https://auth.example.com/verify-email#token=TOKEN');
  assert.equal(accountLink('https://example.com/auth', 'password-reset', 'T'), 'https://example.com/auth/password-reset#token=T');
  assert.equal(accountLink('https://example.com/auth/', 'password-reset', 'T'), 'https://example.com/auth/password-reset#token=T');
});

test('each mail has both bodies with the link; the HTML escapes what the account holder chose', () => {
  for (const make of [verificationMail, passwordResetMail]) {
    const mail = make({ to: 'x@example.com', username: '<img src=x onerror=alert(1)>', link: 'https://a.example/verify-email#token=abc' });
    assert.ok(mail.text.includes('https://a.example/verify-email#token=abc'));
    assert.ok(mail.html.includes('href="https://a.example/verify-email#token=abc"'));
    assert.ok(!mail.html.includes('<img'), mail.html);
    assert.ok(mail.html.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.equal(mail.to, 'x@example.com');
  }
});
