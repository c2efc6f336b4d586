import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidRequestError } from '../core/errors.ts';
import { parseBasicCredentials, parseForm } from './form.ts';

test('parses a form with + as space and percent-escapes', () => {
  assert.deepEqual({ ...parseForm(Buffer.from('username=john+doe&password=p%40ss%3D&scope=me%20admin&empty=&flag')) }, {
    username: 'john doe',
    password: 'p@ss=',
    scope: 'me admin',
    empty: '',
    flag: '',
  });
});

test('refuses repeated parameters, bad escapes and non-UTF-8', () => {
  for (const body of ['a=1&a=2', 'a=%ZZ', 'a=%E9', 'a=%', Buffer.from([0x61, 0x3d, 0xff])]) {
    assert.throws(() => parseForm(Buffer.isBuffer(body) ? body : Buffer.from(body)), InvalidRequestError, String(body));
  }
});

test('collects a repeated resource (RFC 8707 §2) in an array; every other parameter stays single', () => {
  assert.deepEqual({ ...parseForm(Buffer.from('resource=https%3A%2F%2Fa.example&scope=me&resource=urn%3Ab')) }, { resource: ['https://a.example', 'urn:b'], scope: 'me' });
  assert.deepEqual({ ...parseForm(Buffer.from('resource=urn%3Aa')) }, { resource: 'urn:a' });
  assert.throws(() => parseForm(Buffer.from('resource=urn%3Aa&scope=me&scope=admin')), InvalidRequestError);
});

test('does not let a parameter named __proto__ reach the prototype', () => {
  const fields = parseForm(Buffer.from('__proto__=x&constructor=y'));
  assert.equal(fields.__proto__, 'x');
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('reads HTTP Basic client credentials, form-decoded (RFC 6749 §2.3.1)', () => {
  assert.deepEqual(parseBasicCredentials(`Basic ${Buffer.from('my%20app:s%3Acret').toString('base64')}`), { clientId: 'my app', clientSecret: 's:cret' });
  assert.equal(parseBasicCredentials('Bearer x'), undefined);
  assert.throws(() => parseBasicCredentials(`Basic ${Buffer.from('nocolon').toString('base64')}`), InvalidRequestError);
});

test('a Basic header read again gives the same credentials, which no caller can change; a malformed one is refused every time', () => {
  const header = `Basic ${Buffer.from('client-a:secret-a').toString('base64')}`;
  const first = parseBasicCredentials(header)!;
  const again = parseBasicCredentials(` ${header}`.slice(1))!;
  assert.deepEqual(again, { clientId: 'client-a', clientSecret: 'secret-a' });
  assert.ok(Object.isFrozen(first) && Object.isFrozen(again));
  assert.throws(() => ((first as { clientSecret: string }).clientSecret = 'other'), TypeError);
  const malformed = `Basic ${Buffer.from('nocolon').toString('base64')}`;
  for (let i = 0; i < 3; i++) assert.throws(() => parseBasicCredentials(malformed), InvalidRequestError, `attempt ${i}`);
  const nul = `Basic ${Buffer.from('client-a:secret\u0000').toString('base64')}`;
  for (let i = 0; i < 3; i++) assert.throws(() => parseBasicCredentials(nul), InvalidRequestError, `attempt ${i}`);
  // Many distinct headers (more than are remembered) are each read right.
  for (let i = 0; i < 600; i++) {
    assert.deepEqual(parseBasicCredentials(`Basic ${Buffer.from(`id-${i}:secret-${i}`).toString('base64')}`), { clientId: `id-${i}`, clientSecret: `secret-${i}` });
  }
  assert.deepEqual(parseBasicCredentials(header), { clientId: 'client-a', clientSecret: 'secret-a' });
});
