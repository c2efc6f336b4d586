/**
 * Username and password rules (SPEC §3): usernames are 1–128 characters after Unicode NFKC,
 * with no control characters or spaces, unique case-insensitively; new passwords are 8–1024
 * characters.
 *
 * @example
 * normalizeUsername('Ｊｏｈｎ') // 'John'; usernameKey('John') // 'john'
 */

/** NFKC form of a username, as stored and shown. */
export function normalizeUsername(raw: string): string {
  return raw.normalize('NFKC');
}

/** The key that makes usernames unique: NFKC, then case-folded. */
export function usernameKey(raw: string): string {
  return raw.normalize('NFKC').toLowerCase().normalize('NFKC');
}

// Control characters (C0, DEL, C1), and every kind of space or separator.
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Z}\s]/u;

/** Returns why a username is unacceptable, or undefined when it is fine. */
export function usernameProblem(raw: string): string | undefined {
  const name = normalizeUsername(raw);
  const length = [...name].length;
  if (length < 1) return 'Username must not be empty';
  if (length > 128) return 'Username must be at most 128 characters';
  if (FORBIDDEN.test(name)) return 'Username must not contain spaces or control characters';
  return undefined;
}

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

/** Returns why a new password is unacceptable, or undefined when it is fine. */
export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `Password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `Password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  return undefined;
}
