/**
 * The rules for a password a person picks for themself (SPEC §10: registration and password
 * reset): the rules of every new password (`password-rules.ts`: 8–1024 characters, storable
 * text), and not one on the shipped common-passwords list, nor the account's own username or
 * email address (NIST SP 800-63B §3.1.1.2: refuse commonly used passwords and context-specific
 * words such as the username). Each refusal names its rule in the 422's `type`.
 *
 * @example
 * choosablePasswordIssues('baseball', { username: 'jane', email: 'jane@example.com' }, ['body', 'password'])
 * // [{ loc: ['body', 'password'], msg: 'Password is too common: it is on the list of common passwords', type: 'common_password' }]
 */
import { isCommonPassword } from './common-passwords.ts';
import type { ValidationIssue } from './errors.ts';
import { passwordProblem } from './password-rules.ts';
import { foldCase } from './username.ts';

/** Why a self-chosen password is refused, as 422 issues at `loc`; [] when it is acceptable. */
export function choosablePasswordIssues(password: string, account: { username: string; email: string | null }, loc: (string | number)[]): ValidationIssue[] {
  const problem = passwordProblem(password);
  if (problem) return [{ loc, msg: problem, type: 'value_error' }];
  // Case-insensitively (Unicode case folding, as usernames are compared): `JaneDoe` is no
  // better a password for the account `janedoe`.
  const folded = foldCase(password.normalize('NFKC'));
  if (folded === foldCase(account.username.normalize('NFKC'))) {
    return [{ loc, msg: 'Password must not be the username', type: 'password_equals_username' }];
  }
  if (account.email !== null && folded === foldCase(account.email.normalize('NFKC'))) {
    return [{ loc, msg: 'Password must not be the email address', type: 'password_equals_email' }];
  }
  if (isCommonPassword(password)) return [{ loc, msg: 'Password is too common: it is on the list of common passwords', type: 'common_password' }];
  return [];
}
