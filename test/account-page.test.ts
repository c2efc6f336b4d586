/**
 * The account page over HTTP (SPEC §10, "Account page"): `GET /account` and its script and
 * stylesheet are served from the package with a strict Content-Security-Policy (exact), no
 * inline script or style, nothing from another host, and the headers of a page that handles
 * passwords; the files ship in the build (dist/) and in the packed tarball. The enrollment
 * answer carries the QR code the page shows. What the page does in a browser is
 * account-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import QRCode from 'qrcode';
import { DIST, ROOT } from './build.ts';
import { createTestContext, login, tempDir, type TestContext } from './helpers.ts';
import { spawnServer } from './spawn-server.ts';

/** The policy, spelled out: a change to it must change this test. */
const EXPECTED_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; form-action 'none'; " +
  "frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

const SOURCE_DIR = join(ROOT, 'src', 'account-page');
const PAGE_FILES = ['account.html', 'account.js', 'account.css'] as const;
const source = (file: string): string => readFileSync(join(SOURCE_DIR, file), 'utf8');

/** The lines of a script or stylesheet that are code, not comments (comments may name what the code avoids). */
function codeLines(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .filter((line) => !/^\s*\/\//.test(line))
    .join('\n');
}

/** Every `src` and `href` attribute value of an HTML document. */
function references(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)\s*=\s*["']([^"']*)["']/gi)].map((m) => m[1] as string);
}

let t: TestContext;
before(async () => {
  t = await createTestContext();
});
after(() => t.close());

describe('GET /account', () => {
  test('answers the page as HTML with the exact CSP, no framing, no sniffing, no referrer and no caching', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/account' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(response.headers['content-security-policy'], EXPECTED_CSP);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
    assert.equal(response.headers['x-frame-options'], 'DENY');
    assert.equal(response.headers['cross-origin-opener-policy'], 'same-origin');
    // The page can show recovery codes: never stored, never brought back by the back button.
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.equal(response.body, source('account.html'));
  });

  test('the HTML has no inline script, no inline style, no event-handler attribute and no javascript: URL', async () => {
    const html = (await t.app.inject({ method: 'GET', url: '/account' })).body;
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    assert.equal(scripts.length, 1, 'one script');
    for (const [, attributes, body] of scripts) {
      assert.match(String(attributes), /\btype="module"/);
      assert.match(String(attributes), /\bsrc="\/account\/account\.js"/);
      assert.equal(String(body).trim(), '', 'the script element is empty: its code comes from src');
    }
    assert.doesNotMatch(html, /<style\b/i, 'no <style> element');
    assert.doesNotMatch(html, /\sstyle\s*=/i, 'no style attribute');
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'no onclick= and the like');
    assert.doesNotMatch(html, /javascript:/i);
    assert.deepEqual([...html.matchAll(/<link\b[^>]*rel="stylesheet"[^>]*>/gi)].length, 1, 'one stylesheet');
  });

  test('nothing in the page, its script or its stylesheet refers to another host', async () => {
    const html = (await t.app.inject({ method: 'GET', url: '/account' })).body;
    for (const reference of references(html)) {
      assert.ok(/^\/[^/]/.test(reference) || reference.startsWith('data:'), `${reference} is a path on this server or a data: URL`);
    }
    for (const file of PAGE_FILES) {
      const text = source(file);
      assert.doesNotMatch(text, /\b(?:https?|wss?|ftp):\/\//i, `${file} names no URL of another host`);
      assert.doesNotMatch(text, /["'(]\/\/[a-z0-9]/i, `${file} has no protocol-relative URL`);
    }
    const css = codeLines(source('account.css'));
    assert.doesNotMatch(css, /@import|url\(/i, 'the stylesheet loads nothing (fonts, images, other sheets)');
    // The script calls only paths of this server.
    const js = codeLines(source('account.js'));
    for (const [, target] of js.matchAll(/\bfetch\(\s*([^,)]+)/g)) assert.equal(String(target).trim(), 'path', 'fetch is only called with an API path');
    for (const [, path] of js.matchAll(/(?:send|authed)\('(?:GET|POST|PUT|DELETE)',\s*[`']([^`']+)[`']/g)) assert.match(String(path), /^\/[a-z]/, `${path} is a path on this server`);
  });

  test('the script keeps no token in storage and renders no markup (only textContent)', () => {
    const js = codeLines(source('account.js'));
    for (const forbidden of [/localStorage/, /sessionStorage/, /indexedDB/i, /document\.cookie/, /caches\./, /innerHTML/, /outerHTML/, /insertAdjacentHTML/, /document\.write/, /\beval\(/, /new Function\b/, /DOMParser/, /createContextualFragment/]) {
      assert.doesNotMatch(js, forbidden, String(forbidden));
    }
    // Every element the script looks up is in the page.
    const html = source('account.html');
    const ids = [...js.matchAll(/byId\('([^']+)'\)/g)].map((m) => m[1] as string);
    assert.ok(ids.length > 20, 'the script finds its elements by id');
    for (const id of ids) assert.match(html, new RegExp(`\\sid="${id}"`), `#${id} is in the HTML`);
  });

  test('serves its script and stylesheet with their media types, the same headers, and a validator for revalidation', async () => {
    for (const [path, file, type] of [
      ['/account/account.js', 'account.js', 'text/javascript; charset=utf-8'],
      ['/account/account.css', 'account.css', 'text/css; charset=utf-8'],
    ] as const) {
      const response = await t.app.inject({ method: 'GET', url: path });
      assert.equal(response.statusCode, 200, path);
      assert.equal(response.headers['content-type'], type, path);
      assert.equal(response.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(response.headers['referrer-policy'], 'no-referrer', path);
      assert.equal(response.headers['content-security-policy'], EXPECTED_CSP, path);
      assert.equal(response.headers['cross-origin-resource-policy'], 'same-origin', path);
      assert.equal(response.headers['cache-control'], 'no-cache', path);
      assert.equal(response.body, source(file), path);
      // RFC 9110 §13.1.2: the browser's copy is revalidated, not sent again.
      const etag = String(response.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]{43}"$/, path);
      const revalidated = await t.app.inject({ method: 'GET', url: path, headers: { 'if-none-match': etag } });
      assert.equal(revalidated.statusCode, 304, path);
      assert.equal(revalidated.body, '');
      const changed = await t.app.inject({ method: 'GET', url: path, headers: { 'if-none-match': '"something-else"' } });
      assert.equal(changed.statusCode, 200, path);
    }
  });

  test('the page refers to exactly its two assets, and both are served', async () => {
    const html = (await t.app.inject({ method: 'GET', url: '/account' })).body;
    const local = references(html).filter((reference) => reference.startsWith('/account'));
    assert.deepEqual(local.sort(), ['/account/account.css', '/account/account.js']);
  });

  test('nothing else is served under /account/: a fixed list, no path reaches the file system', async () => {
    for (const url of ['/account/account.html', '/account/other.js', '/account/../package.json', '/account/%2e%2e/%2e%2e/package.json', '/account/..%2fapp.js', '/account/account.js/x']) {
      const response = await t.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 404, url);
      assert.deepEqual(response.json(), { detail: 'Not Found' }, url);
    }
  });

  test('other HTML pages keep their own policy (the docs)', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs' });
    assert.equal(response.statusCode, 200);
    assert.notEqual(response.headers['content-security-policy'], EXPECTED_CSP);
    assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
  });

  test('the page is not in the OpenAPI document', async () => {
    const paths = Object.keys(((await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> }).paths);
    assert.deepEqual(paths.filter((path) => path.startsWith('/account')), []);
  });
});

describe('the page ships in the package', () => {
  test('npm run build copies the three files to dist/account-page/ unchanged', () => {
    for (const file of PAGE_FILES) {
      const built = join(DIST, 'account-page', file);
      assert.ok(existsSync(built), `${built} exists (run npm run build)`);
      assert.equal(readFileSync(built, 'utf8'), source(file), `dist/account-page/${file} is the current source (run npm run build)`);
    }
  });

  test('the compiled server (node dist/bin.js serve) serves the page from dist/account-page/', { timeout: 120_000 }, async () => {
    const dir = tempDir('portcullis-account-page-');
    const server = await spawnServer({ databaseUrl: `sqlite:${join(dir.path, 'portcullis.db')}` });
    try {
      for (const [path, file] of [['/account', 'account.html'], ['/account/account.js', 'account.js'], ['/account/account.css', 'account.css']] as const) {
        const response = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(30_000) });
        assert.equal(response.status, 200, path);
        assert.equal(response.headers.get('content-security-policy'), EXPECTED_CSP, path);
        assert.equal(await response.text(), source(file), path);
      }
    } finally {
      await server.stop();
      dir.remove();
    }
  });

  test('npm pack puts them in the tarball', { timeout: 120_000 }, async () => {
    // --dry-run lists the files without writing a tarball; --ignore-scripts: no rebuild (prepack).
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }, (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)));
    });
    const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
    assert.ok(pack, 'npm pack reported the tarball');
    const paths = pack.files.map((file) => file.path);
    for (const file of PAGE_FILES) assert.ok(paths.includes(`dist/account-page/${file}`), `dist/account-page/${file} is in the tarball`);
    assert.deepEqual(paths.filter((path) => path.startsWith('src/')), [], 'the sources are not');
  });
});

describe('the QR code of the enrollment (POST /users/me/mfa/totp)', () => {
  test('qr_svg is the QR code of otpauth_uri as an SVG document, and the OpenAPI document describes it', async () => {
    await t.service.createUser({ username: 'qr-user', password: 'qr-user-password', scopes: ['me'] });
    const { response, body } = await login(t.app, 'qr-user', 'qr-user-password');
    assert.equal(response.statusCode, 200);
    const enrolled = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: { authorization: `Bearer ${String(body.access_token)}` } });
    assert.equal(enrolled.statusCode, 200);
    const { otpauth_uri: uri, qr_svg: svg } = enrolled.json() as { otpauth_uri: string; qr_svg: string };
    assert.equal(svg, await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 }));
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" [^>]*viewBox="0 0 \d+ \d+"/);
    assert.doesNotMatch(svg, /<script|<foreignObject|\son[a-z]+=|href=/i, 'shapes only');

    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> }> }>>;
    };
    const schema = document.paths['/users/me/mfa/totp']?.post?.responses['200']?.content['application/json']?.schema;
    assert.ok(schema, 'the 200 answer has a schema');
    assert.ok('qr_svg' in schema.properties);
    assert.ok(schema.required.includes('qr_svg'));
  });
});
