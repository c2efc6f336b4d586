/**
 * The mails Portcullis sends (SPEC §10), each as plain text and HTML. Every value put into
 * the HTML is escaped (`escapeHtml`; OWASP XSS Prevention Cheat Sheet, rule #1 and #2: the
 * five significant characters, in text and in quoted attributes), whoever chose it — a
 * username or full name is the registrant's own text. Links are built from the configured
 * public URL, never from a request's Host header (which a client picks: a reset link
 * pointing at the attacker's host would hand them the token).
 *
 * @example
 * const mail = verificationMail({ to: 'jane@example.com', username: 'jane', link: accountLink(publicUrl, 'verify-email', token) });
 */
import type { NewMail } from './store.ts';

/**
 * Text made safe to put in HTML, in element content and in quoted attribute values.
 *
 * @example
 * escapeHtml('<b>"Tom" & \'Jerry\'</b>') // '&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' }[c]};`);
}

/**
 * The link of a mail: `page` under `publicUrl` (which may have a path), with the token in the
 * fragment — a fragment never reaches a server log, a proxy or a Referer (OWASP Forgot
 * Password Cheat Sheet: keep the token out of logs and referrers); the page sends it on.
 *
 * @example
 * accountLink('https://auth.example.com/base', 'password-reset', token) // 'https://auth.example.com/base/password-reset#token=…'
 */
export function accountLink(publicUrl: string, page: 'verify-email' | 'password-reset', token: string): string {
  const url = new URL(page, publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`);
  url.hash = `token=${token}`;
  return url.toString();
}

const layout = (paragraphs: string[]): string =>
  `<!doctype html>\n<html><body style="font-family: sans-serif; line-height: 1.5">\n${paragraphs.map((p) => `<p>${p}</p>`).join('\n')}\n</body></html>\n`;

const button = (link: string, label: string): string => `<a href="${escapeHtml(link)}">${escapeHtml(label)}</a><br><small>${escapeHtml(link)}</small>`;

/** The mail that confirms an address: a link valid for 24 hours. */
export function verificationMail(input: { to: string; username: string; link: string }): NewMail {
  const { to, username, link } = input;
  return {
    to,
    subject: 'Confirm your email address',
    text: [
      `Hello ${username},`,
      '',
      `please confirm that ${to} is your email address by opening this link within 24 hours:`,
      '',
      link,
      '',
      'If you did not ask for an account, ignore this mail: nothing happens without the link.',
      '',
    ].join('\n'),
    html: layout([
      `Hello ${escapeHtml(username)},`,
      `please confirm that ${escapeHtml(to)} is your email address by opening this link within 24 hours:`,
      button(link, 'Confirm my email address'),
      'If you did not ask for an account, ignore this mail: nothing happens without the link.',
    ]),
  };
}

/** The mail that resets a password: a single-use link valid for 30 minutes. */
export function passwordResetMail(input: { to: string; username: string; link: string }): NewMail {
  const { to, username, link } = input;
  return {
    to,
    subject: 'Reset your password',
    text: [
      `Hello ${username},`,
      '',
      'someone (we hope you) asked to reset the password of your account. To choose a new one, open this link within 30 minutes; it works once:',
      '',
      link,
      '',
      'Choosing a new password ends every session of the account. If you did not ask, ignore this mail: your password stays as it is.',
      '',
    ].join('\n'),
    html: layout([
      `Hello ${escapeHtml(username)},`,
      'someone (we hope you) asked to reset the password of your account. To choose a new one, open this link within 30 minutes; it works once:',
      button(link, 'Choose a new password'),
      'Choosing a new password ends every session of the account. If you did not ask, ignore this mail: your password stays as it is.',
    ]),
  };
}
