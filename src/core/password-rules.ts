/**
 * Password rules (SPEC §3, §4): a new password is 8–1024 characters of well-formed Unicode
 * without NUL. Applied when an account is created or updated and when a user changes their
 * own password; the routes' schemas take the same bounds.
 *
 * @example
 * passwordProblem('short') // 'Password must be at least 8 characters'
 */
import { textProblem } from './text.ts';

/** The fewest characters a new password may have (SPEC §4). */
export const PASSWORD_MIN_LENGTH = 8;
/** The most characters a new password may have (SPEC §4). */
export const PASSWORD_MAX_LENGTH = 1024;

/**
 * Why a new password is unacceptable, or undefined. Besides the length, a password must be
 * well-formed Unicode (a lone surrogate has no UTF-8 form: the hash would depend on how it
 * was replaced) without NUL (the token endpoint refuses NUL in every field, and bcrypt
 * stops at one).
 *
 * @example
 * passwordProblem('short') // 'Password must be at least 8 characters'
 */
export function passwordProblem(password: string): string | undefined {
  const text = textProblem(password);
  if (text) return `Password ${text}`;
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `Password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `Password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  return undefined;
}
