import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from './errors.ts';
import { checkWebhookUrl, isPublicAddress, webhookUrlProblem } from './webhook-target.ts';

test('isPublicAddress refuses loopback, private, link-local, shared, documentation, multicast and reserved addresses', () => {
  for (const address of [
    '0.0.0.0', '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '100.64.0.1', '169.254.169.254',
    '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'ff02::1', '2001:db8::1', '100::1', '64:ff9b:1::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a00:1', '64:ff9b::7f00:1', '2002:a00:1::', '2002:7f00:1::1', '::127.0.0.1',
    'not an address', '',
  ]) {
    assert.equal(isPublicAddress(address), false, address);
  }
});

test('isPublicAddress accepts public addresses, IPv6 forms of public IPv4 included', () => {
  for (const address of ['93.184.215.14', '8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001:82a::200e', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1']) {
    assert.equal(isPublicAddress(address), true, address);
  }
});

test('webhookUrlProblem accepts http(s) URLs only, without credentials or fragment, at most 2048 characters', () => {
  assert.equal(webhookUrlProblem('https://hooks.example.com/a?b=1'), undefined);
  assert.equal(webhookUrlProblem('http://127.0.0.1:9000/'), undefined);
  assert.match(webhookUrlProblem('ftp://example.com/')!, /http/);
  assert.match(webhookUrlProblem('file:///etc/passwd')!, /http/);
  assert.match(webhookUrlProblem('gopher://example.com/')!, /http/);
  assert.match(webhookUrlProblem('//example.com/')!, /absolute/);
  assert.match(webhookUrlProblem('https://a:b@example.com/')!, /username or password/);
  assert.match(webhookUrlProblem('https://example.com/#x')!, /fragment/);
  assert.match(webhookUrlProblem(`https://example.com/${'a'.repeat(2048)}`)!, /2048/);
  assert.match(webhookUrlProblem('https://example.com/\u0000')!, /NUL/);
});

test('checkWebhookUrl normalises the URL and refuses a name that resolves to loopback unless allowed', async () => {
  assert.equal(await checkWebhookUrl('HTTPS://Hooks.Example.COM:443/x', { allowPrivate: true }), 'https://hooks.example.com/x');
  await assert.rejects(checkWebhookUrl('http://localhost:9000/', { allowPrivate: false }), (error: unknown) => error instanceof ValidationError && /localhost \((127\.0\.0\.1|::1)\) is not a public address/.test(error.message));
  assert.equal(await checkWebhookUrl('http://localhost:9000/', { allowPrivate: true }), 'http://localhost:9000/');
  await assert.rejects(checkWebhookUrl('ws://example.com/', { allowPrivate: true, loc: ['url'] }), (error: unknown) => error instanceof ValidationError && error.issues[0]!.loc[0] === 'url');
});
