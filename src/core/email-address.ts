/**
 * The email addresses a person may register with (SPEC §10): the HTML standard's "valid
 * e-mail address" (WHATWG HTML §4.10.5.1.5 — what `<input type=email>` accepts: an ASCII
 * local part without quotes or comments, and a domain of DNS labels), at most 254
 * characters (RFC 5321 §4.5.3.1.3: a path is at most 256 octets, brackets included). Such an
 * address is one mailbox: no spaces, commas or angle brackets that a mail library could read
 * as a list or a display name.
 *
 * @example
 * emailAddressProblem('jane@example.com') // undefined
 * emailAddressProblem('jane@example.com, boss@example.com') // 'value is not a valid email address'
 */

const VALID_EMAIL = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** The longest address accepted. */
export const EMAIL_MAX_LENGTH = 254;

/** Why `email` is not an address one can register with, or undefined. */
export function emailAddressProblem(email: string): string | undefined {
  if (email.length > EMAIL_MAX_LENGTH || !VALID_EMAIL.test(email)) return 'value is not a valid email address';
  return undefined;
}
