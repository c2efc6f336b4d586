/**
 * The account page (SPEC §10): `GET /account`, where a person logs in (with the TOTP step),
 * sees their profile and live sessions, ends sessions, changes the password and turns TOTP on
 * and off — all through the public API, from a page served by Portcullis itself.
 *
 * The page is three files that ship in the package (`src/account-page/`, copied to
 * `dist/account-page/` by scripts/build.js): the HTML, one JavaScript module and one
 * stylesheet, no framework and no CDN. They are a fixed list, read once on first use; no path
 * from the request reaches the file system.
 *
 * @example
 * await app.register(accountPageRoutes); // in app.ts's route list
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where the page's files are: beside the compiled routes in dist/, beside the sources under tsx. */
const ACCOUNT_PAGE_DIR = fileURLToPath(new URL('../../account-page/', import.meta.url));

/**
 * The page's Content-Security-Policy (CSP Level 3), stricter than the docs' (app.ts): the page
 * handles passwords, tokens, TOTP secrets and recovery codes, so only its own script and
 * stylesheet run (no inline script or style, no `eval`: OWASP XSS Prevention and CSP Cheat
 * Sheets), it talks only to this server (`connect-src`), the QR code comes as a `data:` image,
 * no other site may frame it (clickjacking: `frame-ancestors`), `<base>` cannot redirect its
 * relative URLs, and no form may submit anywhere (the script sends every form with fetch;
 * without the script the forms stay hidden, and a submission would be refused rather than put
 * a password in a URL). Trusted Types (`require-trusted-types-for 'script'`, no policy
 * allowed) make the browser refuse any string written to an HTML sink such as `innerHTML`:
 * the page renders text only with `textContent`.
 */
const ACCOUNT_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  'img-src data:',
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

/** The files of the page, by URL path: each with its file and media type. */
const FILES: ReadonlyMap<string, { file: string; type: string }> = new Map([
  ['/account', { file: 'account.html', type: 'text/html; charset=utf-8' }],
  // RFC 9239 §6: text/javascript is the media type for JavaScript (a module script needs one).
  ['/account/account.js', { file: 'account.js', type: 'text/javascript; charset=utf-8' }],
  ['/account/account.css', { file: 'account.css', type: 'text/css; charset=utf-8' }],
]);

interface LoadedFile {
  body: Buffer;
  /** A strong validator: the SHA-256 of the bytes (RFC 9110 §8.8.3). */
  etag: string;
}

/** Registers `GET /account` and its two assets. Needs no plugin: the page calls the API like any client. */
export async function accountPageRoutes(app: FastifyInstance): Promise<void> {
  // A build that lost the page's files is a packaging mistake: fail at start, not per request.
  for (const { file } of FILES.values()) {
    if (!existsSync(`${ACCOUNT_PAGE_DIR}${file}`)) throw new Error(`the account page's ${file} is missing from ${ACCOUNT_PAGE_DIR} (run npm run build)`);
  }
  const loaded = new Map<string, Promise<LoadedFile>>();
  const load = (file: string): Promise<LoadedFile> => {
    let entry = loaded.get(file);
    if (!entry) {
      entry = readFile(`${ACCOUNT_PAGE_DIR}${file}`).then((body) => ({ body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` }));
      loaded.set(file, entry);
      entry.catch(() => loaded.delete(file));
    }
    return entry;
  };

  const hidden = { hide: true };
  for (const [path, { file, type }] of FILES) {
    const html = type.startsWith('text/html');
    app.get(path, { schema: hidden }, async (request: FastifyRequest, reply: FastifyReply) => {
      const { body, etag } = await load(file);
      reply
        .type(type)
        .header('content-security-policy', ACCOUNT_PAGE_CSP)
        .header('x-frame-options', 'DENY')
        // The page keeps tokens in the memory of its tab; no window of another site shares its
        // browsing context group (and with it a handle on the page).
        .header('cross-origin-opener-policy', 'same-origin')
        .header('cross-origin-resource-policy', 'same-origin');
      if (html) {
        // no-store: the page may show recovery codes and holds tokens; a stored copy would also
        // let the back/forward cache bring a logged-in page back after the person left it.
        return reply.header('cache-control', 'no-store').send(body);
      }
      // The script and stylesheet: revalidated on every load (RFC 9111 §5.2.2.4), so a new
      // version of the package is picked up at once; an unchanged file is a 304 (RFC 9110 §13.1.2).
      reply.header('cache-control', 'no-cache').header('etag', etag);
      const ifNoneMatch = request.headers['if-none-match'];
      if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*')) return reply.code(304).send();
      return reply.send(body);
    });
  }
}
