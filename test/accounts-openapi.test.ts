/**
 * SPEC §10 in the OpenAPI document and the pages the mails link to: the routes that are on
 * appear with their error responses like every other route; `GET /verify-email` and
 * `GET /password-reset` are HTML pages under the strict policy of every page (SPEC §4: no
 * framing, scripts only from the server, none inline), loading their one script.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { accountContext, PUBLIC_URL, type AccountTestContext } from './accounts-fixture.ts';

let t: AccountTestContext;
before(async () => {
  t = await accountContext('sqlite::memory:', { registration: true, mail: { publicUrl: PUBLIC_URL } });
});
after(() => t.close());

test('the routes are in the OpenAPI document, tagged accounts, with their statuses and error bodies; no security requirement', async () => {
  const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { tags: string[]; security?: unknown; responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }>; requestBody?: unknown }>> };
  const expected: Record<string, string[]> = {
    '/register': ['201', '409', '422', '429'],
    '/verify-email': ['204', '400', '422'],
    '/password-reset/request': ['202', '422', '429'],
    '/password-reset': ['204', '400', '422'],
  };
  for (const [path, statuses] of Object.entries(expected)) {
    const operation = doc.paths[path]?.post;
    assert.ok(operation, path);
    assert.deepEqual(operation.tags, ['accounts'], path);
    assert.equal(operation.security, undefined, `${path} needs no token`);
    assert.ok(operation.requestBody, path);
    assert.deepEqual(Object.keys(operation.responses).sort(), statuses, path);
    for (const status of statuses.filter((s) => s >= '400' && s !== '422')) {
      assert.ok(operation.responses[status]?.content?.['application/json']?.schema.properties?.detail, `${path} ${status} documents {"detail"}`);
    }
  }
  assert.equal(doc.paths['/verify-email']?.get, undefined, 'the pages are not API operations');
});

test('the pages the mails link to forbid framing, run only the server’s script, keep no token, and are not cached', async () => {
  for (const url of ['/verify-email', '/password-reset']) {
    const response = await t.app.inject({ method: 'GET', url });
    assert.equal(response.statusCode, 200, url);
    assert.match(String(response.headers['content-type']), /^text\/html/);
    const csp = String(response.headers['content-security-policy']);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.equal(response.headers['x-frame-options'], 'DENY');
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
    const scripts = [...response.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.deepEqual(scripts.map((m) => [m[1]?.trim(), m[2]]), [['src="account-links.js"', '']], 'one script, from the server, none inline');
  }
  const script = await t.app.inject({ method: 'GET', url: '/account-links.js' });
  assert.equal(script.statusCode, 200);
  assert.match(String(script.headers['content-type']), /^application\/javascript/);
  assert.match(script.body, /history\.replaceState/, 'the token leaves the address bar');
  assert.match(script.body, /'verify-email'/);
  assert.match(script.body, /'password-reset'/);
});
