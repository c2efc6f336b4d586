/**
 * Username rules (SPEC §3, §4). A username is stored and shown in Unicode NFKC; it is unique
 * under RFC 8265's UsernameCaseMapped comparison (width mapping, Unicode Default Case Folding,
 * NFC), and a new one must be well-formed, 1–128 characters and made of the PRECIS
 * IdentifierClass (letters, digits, printable ASCII). The password rules are in
 * `password-rules.ts`.
 *
 * @example
 * normalizeUsername('Ｊｏｈｎ') // 'John'
 * usernameKey('Straße') === usernameKey('STRASSE') // true
 * usernameProblem('sur\ud800x') // 'Username must be well-formed Unicode (no lone surrogates)'
 */
import { textProblem } from './text.ts';

/**
 * NFKC form of a username, as stored and shown (SPEC §3). NFKC includes RFC 8265 §3.3.2's
 * width mapping (fullwidth and halfwidth forms) and maps the other compatibility characters
 * that the PRECIS IdentifierClass would refuse (ligatures, superscripts, the Kelvin sign…).
 *
 * @example
 * normalizeUsername('ｊｏｈｎ') // 'john'
 */
export function normalizeUsername(raw: string): string {
  return raw.normalize('NFKC');
}

/**
 * Unicode Default Case Folding, full form (the C and F mappings of CaseFolding.txt; Unicode
 * §3.13 toCasefold), as RFC 8265 §3.3.2 rule 3 asks: `ß` → `ss`, `ẞ` → `ss`, final `ς` → `σ`,
 * `İ` → `i̇`. JavaScript has no case-folding function; per code point, lower → upper → lower
 * case gives exactly the full folding (checked against Unicode 15's CaseFolding.txt over every
 * code point; later additions are simple upper → lower pairs) except for two cases handled here: dotless `ı`, which has no default folding (only the Turkic
 * one, which default folding leaves out), and Cherokee, which folds to its *upper* case
 * letters. Per code point, so the final-sigma rule of `toLowerCase` never applies.
 *
 * @example
 * foldCase('Straße ΟΔΟΣ') // 'strasse οδοσ'
 */
export function foldCase(text: string): string {
  let out = '';
  for (const char of text) {
    const cp = char.codePointAt(0)!;
    if (cp < 0x80) {
      out += cp >= 0x41 && cp <= 0x5a ? String.fromCharCode(cp + 0x20) : char;
    } else if (cp === 0x131) {
      out += char; // ı: no default case folding (CaseFolding.txt lists only the Turkic T mapping)
    } else if ((cp >= 0x13a0 && cp <= 0x13f5) || (cp >= 0xab70 && cp <= 0xabbf) || (cp >= 0x13f8 && cp <= 0x13fd)) {
      out += foldCherokee(cp);
    } else {
      out += char.toLowerCase().toUpperCase().toLowerCase();
    }
  }
  return out;
}

/** Cherokee folds to the upper-case letters (CaseFolding.txt, since Unicode 8). */
function foldCherokee(cp: number): string {
  if (cp >= 0xab70) return String.fromCodePoint(cp - 0xab70 + 0x13a0);
  if (cp >= 0x13f8) return String.fromCodePoint(cp - 8);
  return String.fromCodePoint(cp);
}

/**
 * The key that makes usernames unique and finds them (RFC 8265 §3.3.2, UsernameCaseMapped):
 * NFKC (SPEC §3; it includes the width mapping), full case folding, then NFC. Total: any
 * string has a key, so lookups never fail on odd input.
 *
 * @example
 * usernameKey('ẞ') === usernameKey('ss') // true
 */
export function usernameKey(raw: string): string {
  return foldCase(raw.normalize('NFKC')).normalize('NFC');
}

// Control characters (C0, DEL, C1), format characters, and every kind of space or separator.
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Z}\s]/u;
// RFC 8264 §9.1 LetterDigits: the general categories of letters, digits and combining marks.
const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
// RFC 8264 §9.13 PrecisIgnorableProperties (noncharacters are unassigned, refused anyway).
const IGNORABLE = /^\p{Default_Ignorable_Code_Point}$/u;
// RFC 5892 §2.6 exceptions: PVALID whatever their category, or DISALLOWED whatever it is.
const EXCEPTIONS_PVALID = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTIONS_DISALLOWED = new Set([0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);
// RFC 8264 §9.9 OldHangulJamo (Hangul_Syllable_Type L, V, T); NFKC has composed modern syllables.
const isOldHangulJamo = (cp: number): boolean => (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) || (cp >= 0xd7b0 && cp <= 0xd7fb);
const JAPANESE = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * RFC 5892 Appendix A's CONTEXTO rules for the punctuation IdentifierClass allows only in
 * context: true when `chars[i]` is such a character and its context allows it.
 */
function contextAllows(chars: readonly string[], i: number, cp: number): boolean {
  switch (cp) {
    case 0x00b7: // A.3 MIDDLE DOT: only between two 'l' (Catalan "l·l")
      return chars[i - 1] === 'l' && chars[i + 1] === 'l';
    case 0x0375: // A.4 GREEK LOWER NUMERAL SIGN: followed by a Greek character
      return chars[i + 1] !== undefined && /\p{Script=Greek}/u.test(chars[i + 1]!);
    case 0x05f3: // A.5, A.6 HEBREW GERESH and GERSHAYIM: after a Hebrew character
    case 0x05f4:
      return chars[i - 1] !== undefined && /\p{Script=Hebrew}/u.test(chars[i - 1]!);
    case 0x30fb: // A.7 KATAKANA MIDDLE DOT: in a name with Hiragana, Katakana or Han
      return chars.some((c) => c !== '\u30fb' && JAPANESE.test(c));
    default:
      return false;
  }
}

/** Why the code point at `chars[i]` is not in the PRECIS IdentifierClass, or undefined. */
function identifierProblem(chars: readonly string[], i: number): string | undefined {
  const char = chars[i]!;
  const cp = char.codePointAt(0)!;
  // RFC 8264 §9.11 ASCII7: printable ASCII is valid.
  if (cp >= 0x21 && cp <= 0x7e) return undefined;
  if (EXCEPTIONS_PVALID.has(cp)) return undefined;
  if ([0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb].includes(cp)) {
    return contextAllows(chars, i, cp) ? undefined : `Username must not contain ${hex(cp)} in this position (RFC 5892 Appendix A)`;
  }
  if (!EXCEPTIONS_DISALLOWED.has(cp) && !isOldHangulJamo(cp) && !IGNORABLE.test(char) && LETTER_DIGITS.test(char)) return undefined;
  return `Username must not contain ${hex(cp)}: only letters, digits and printable ASCII are allowed (RFC 8265 IdentifierClass)`;
}

/**
 * Why `raw` cannot be anybody's username, or undefined: ill-formed Unicode, NUL, no
 * characters or more than 128 after NFKC, a space or a control character. Every stored
 * username passes (also those created before the stricter rules of `usernameProblem`), so
 * the password grant asks this before it looks a name up.
 *
 * @example
 * loginNameProblem('john doe') // 'Username must not contain spaces or control characters'
 */
export function loginNameProblem(raw: string): string | undefined {
  const text = textProblem(raw);
  if (text) return `Username ${text}`;
  const name = normalizeUsername(raw);
  const length = [...name].length;
  if (length < 1) return 'Username must not be empty';
  if (length > 128) return 'Username must be at most 128 characters';
  if (FORBIDDEN.test(name)) return 'Username must not contain spaces or control characters';
  return undefined;
}

/**
 * Why `raw` is not acceptable as a new username, or undefined (SPEC §3, §4): the checks of
 * `loginNameProblem`, then not `.` or `..` (path segments: `/users/..` names no user), then
 * RFC 8265 §3.3: every character of the NFKC form in the IdentifierClass (RFC 8264 §4.2),
 * with RFC 5892's contextual rules for the middle dots, the Greek keraia and the Hebrew
 * geresh. Not applied: the Bidi rule (RFC 5893) and the join-control contexts (ZWJ and ZWNJ
 * are refused outright, as format characters).
 *
 * @example
 * usernameProblem('..') // 'Username must not be "." or ".."'
 */
export function usernameProblem(raw: string): string | undefined {
  const basic = loginNameProblem(raw);
  if (basic) return basic;
  const name = normalizeUsername(raw);
  if (name === '.' || name === '..') return 'Username must not be "." or ".."';
  const chars = [...name];
  // RFC 5892 A.8, A.9: Arabic-Indic and Extended Arabic-Indic digits are not mixed.
  if (/[\u0660-\u0669]/.test(name) && /[\u06f0-\u06f9]/.test(name)) return 'Username must not mix Arabic-Indic and Extended Arabic-Indic digits (RFC 5892 Appendix A)';
  for (let i = 0; i < chars.length; i++) {
    const problem = identifierProblem(chars, i);
    if (problem) return problem;
  }
  return undefined;
}
