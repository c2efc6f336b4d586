/**
 * The HTML pages (SPEC §2.3, §4): Swagger UI's Authorize dialog takes passwords, so no page may
 * be framed by another site (clickjacking) — every HTML answer carries a Content-Security-Policy
 * with `frame-ancestors 'none'` and `X-Frame-Options: DENY`. That the pages still work under
 * the policy is checked in a real browser (browser.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestContext, type TestContext } from './helpers.ts';

let t: TestContext;
before(async () => {
  t = await createTestContext();
});
after(() => t.close());

/** The directives of a Content-Security-Policy header, by name. */
function directives(header: unknown): Map<string, string[]> {
  assert.equal(typeof header, 'string', 'a Content-Security-Policy header is sent');
  return new Map(
    (header as string)
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name as string, values]),
  );
}

for (const path of ['/docs', '/redoc', '/docs/static/oauth2-redirect.html']) {
  test(`${path} forbids framing and loads scripts only from the server`, async () => {
    const response = await t.app.inject({ method: 'GET', url: path });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/html/);
    assert.equal(response.headers['x-frame-options'], 'DENY');
    const csp = directives(response.headers['content-security-policy']);
    assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
    assert.deepEqual(csp.get('script-src'), ["'self'"], 'no inline or remote scripts');
    assert.deepEqual(csp.get('default-src'), ["'self'"]);
    assert.deepEqual(csp.get('object-src'), ["'none'"]);
    for (const [name, values] of csp) assert.ok(!values.some((v) => /^(https?:|\*)/.test(v)), `${name} allows no other host`);
  });
}

test('the docs assets are served from the package with validators, and nothing else under their prefixes', async () => {
  for (const [path, type] of [
    ['/docs/static/swagger-ui-bundle.js', /^application\/javascript/],
    ['/docs/static/swagger-ui.css', /^text\/css/],
    ['/docs/static/favicon-32x32.png', /^image\/png$/],
    ['/redoc/static/redoc.standalone.js', /^application\/javascript/],
  ] as const) {
    const response = await t.app.inject({ method: 'GET', url: path });
    assert.equal(response.statusCode, 200, path);
    assert.match(String(response.headers['content-type']), type, path);
    assert.equal(Number(response.headers['content-length']), response.rawPayload.length, path);
    assert.ok(response.rawPayload.length > 0, path);
    // RFC 9110 §13.1.2: a copy the browser holds is revalidated, not sent again.
    const etag = String(response.headers.etag);
    assert.match(etag, /^W\/"[0-9a-f]+-[0-9a-f]+"$/, path);
    const revalidated = await t.app.inject({ method: 'GET', url: path, headers: { 'if-none-match': etag } });
    assert.equal(revalidated.statusCode, 304, path);
    assert.equal(revalidated.rawPayload.length, 0, path);
  }
  // Only the listed files: not the package's other files, not a path out of it.
  for (const path of ['/docs/static/index.html', '/docs/static/package.json', '/docs/static/%2e%2e%2fpackage.json', '/docs/static/', '/redoc/static/redoc.standalone.js.map', '/redoc/static/..%2f..%2fpackage.json']) {
    const response = await t.app.inject({ method: 'GET', url: path });
    assert.equal(response.statusCode, 404, path);
    assert.deepEqual(response.json(), { detail: 'Not Found' }, path);
  }
});
