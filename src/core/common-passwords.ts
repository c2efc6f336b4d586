/**
 * The common-passwords list that ships with Portcullis (SPEC §10): 17,950 passwords of 8 or
 * more characters from the passwords-common dictionary of `@zxcvbn-ts/language-common`
 * (MIT; source and licence at the top of `common-passwords.txt` and in the README). NIST SP
 * 800-63B §3.1.1.2 asks verifiers to refuse new passwords found in lists of commonly used or
 * breached passwords; shorter entries of the dictionary are left out, since the length rule
 * refuses them already. The file sits beside this module (the build copies it to `dist/core/`)
 * and is read once, on first use.
 *
 * @example
 * isCommonPassword('Password1') // false; isCommonPassword('baseball') // true
 */
import { readFileSync } from 'node:fs';

let list: ReadonlySet<string> | undefined;

/** The list, read on first call. */
export function commonPasswords(): ReadonlySet<string> {
  if (!list) {
    const text = readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8');
    list = new Set(text.split('\n').filter((line) => line !== '' && !line.startsWith('# ') && line !== '#'));
  }
  return list;
}

/**
 * True when `password` is on the list, compared case-insensitively (the list is lower case,
 * and `Baseball` is as weak as `baseball`).
 */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(password.toLowerCase());
}
