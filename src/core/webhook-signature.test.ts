import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateWebhookSecret, openWebhookSecret, sealWebhookSecret, signWebhook, webhookHeaders } from './webhook-signature.ts';

test('signs as the Standard Webhooks specification does (its published example)', () => {
  // https://www.standardwebhooks.com — "Verifying webhooks": the example secret, id, timestamp and body.
  const signature = signWebhook({ id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: 1614265330, body: '{"test": 2432232314}', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
  assert.equal(signature, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
});

test('a secret is whsec_ and the base64 of 32 random bytes, never the same twice', () => {
  const secrets = new Set(Array.from({ length: 20 }, generateWebhookSecret));
  assert.equal(secrets.size, 20);
  for (const secret of secrets) {
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(secret.slice(6), 'base64').length, 32);
  }
});

test('the headers carry the id, the timestamp in seconds and the signature of id.timestamp.body', () => {
  const secret = generateWebhookSecret();
  const headers = webhookHeaders({ id: 'msg_1', timestamp: 1796248278, body: '{"a":1}', secret });
  assert.deepEqual(Object.keys(headers).sort(), ['content-type', 'webhook-id', 'webhook-signature', 'webhook-timestamp']);
  assert.equal(headers['webhook-timestamp'], '1796248278');
  assert.equal(headers['webhook-signature'], signWebhook({ id: 'msg_1', timestamp: 1796248278, body: '{"a":1}', secret }));
  assert.notEqual(headers['webhook-signature'], signWebhook({ id: 'msg_1', timestamp: 1796248279, body: '{"a":1}', secret }));
});

test('a sealed secret opens only with the same server secret key and for the same webhook', () => {
  const key = 'k'.repeat(40);
  const secret = generateWebhookSecret();
  const sealed = sealWebhookSecret(secret, 'wh_a', key);
  assert.ok(!sealed.includes(secret.slice(6)));
  assert.equal(openWebhookSecret(sealed, 'wh_a', key), secret);
  assert.equal(openWebhookSecret(sealed, 'wh_b', key), undefined);
  assert.equal(openWebhookSecret(sealed, 'wh_a', 'x'.repeat(40)), undefined);
  assert.equal(openWebhookSecret('garbage', 'wh_a', key), undefined);
});
