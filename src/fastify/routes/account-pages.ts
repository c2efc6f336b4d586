/**
 * The two pages the mails link to (SPEC §10): `GET /verify-email` confirms the address at
 * once, `GET /password-reset` asks for the new password. The token travels in the link's
 * fragment (`#token=…`): browsers never send a fragment to a server, so it reaches no access
 * log, proxy or Referer (OWASP Forgot Password Cheat Sheet). The page's script reads it,
 * removes it from the address bar and posts it to the API. No inline script (the pages get
 * the strict Content-Security-Policy of every HTML answer, `app.ts`), no outside resource,
 * nothing interpolated into the HTML. Paths are relative, so the pages work under a path
 * prefix (`PORTCULLIS_PUBLIC_URL=https://example.com/auth`).
 *
 * @example
 * await app.register(accountPageRoutes);
 * // GET /password-reset#token=… → the form
 */
import type { FastifyInstance } from 'fastify';

const page = (name: string, title: string, body: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body data-page="${name}" style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<main>
<h1>${title}</h1>
${body}
<p id="status" role="status" aria-live="polite">One moment…</p>
</main>
<script src="account-links.js"></script>
</body>
</html>
`;

const VERIFY_PAGE = page('verify-email', 'Confirm your email address', '');

const RESET_PAGE = page(
  'password-reset',
  'Choose a new password',
  `<form id="form" hidden>
<p><label>New password<br><input name="password" type="password" autocomplete="new-password" minlength="8" maxlength="1024" required></label></p>
<p><label>The same again<br><input name="confirm" type="password" autocomplete="new-password" minlength="8" maxlength="1024" required></label></p>
<p><button type="submit">Set the new password</button></p>
</form>`,
);

const SCRIPT = `(function () {
  'use strict';
  var token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  // The token leaves the address bar and the history at once.
  history.replaceState(null, '', location.pathname + location.search);
  var status = document.getElementById('status');
  var show = function (text) { status.textContent = text; };
  var post = function (path, body) {
    return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  };
  var problem = function (response) {
    return response.json().then(function (body) {
      var detail = body && body.detail;
      if (Array.isArray(detail)) return detail.map(function (issue) { return issue.msg; }).join('; ');
      return detail || 'Error ' + response.status;
    }, function () { return 'Error ' + response.status; });
  };
  var offline = function () { show('The server could not be reached. Try again.'); };
  if (!token) { show('This link has no token: open the link of the mail again.'); return; }
  var name = document.body.getAttribute('data-page');
  if (name === 'verify-email') {
    post('verify-email', { token: token }).then(function (response) {
      if (response.status === 204) show('Your email address is confirmed. You can close this page.');
      else problem(response).then(show);
    }, offline);
  } else if (name === 'password-reset') {
    var form = document.getElementById('form');
    form.hidden = false;
    show('');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var password = form.elements.password.value;
      if (password !== form.elements.confirm.value) { show('The two passwords differ.'); return; }
      post('password-reset', { token: token, new_password: password }).then(function (response) {
        if (response.status === 204) {
          form.hidden = true;
          show('Your password is changed and every session of your account has ended. Log in with the new password.');
        } else problem(response).then(show);
      }, offline);
    });
  }
})();
`;

/** Registers `GET /verify-email`, `GET /password-reset` and their script (hidden from the OpenAPI document: pages, not API). */
export async function accountPageRoutes(app: FastifyInstance): Promise<void> {
  const hidden = { hide: true };
  for (const [path, body] of [['/verify-email', VERIFY_PAGE], ['/password-reset', RESET_PAGE]] as const) {
    app.get(path, { schema: hidden }, async (_request, reply) => reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body));
  }
  app.get('/account-links.js', { schema: hidden }, async (_request, reply) => reply.type('application/javascript; charset=utf-8').send(SCRIPT));
}
