/**
 * Text that cannot be stored as it is (SPEC §4): a NUL character (PostgreSQL's `text` cannot
 * hold U+0000 and refuses the whole statement) and ill-formed UTF-16 (a lone surrogate has no
 * UTF-8 form; drivers silently replace it with U+FFFD, so what is stored is not what was
 * sent). Both are refused as client errors before any database sees them.
 *
 * @example
 * textProblem('a\u0000b') // 'must not contain NUL characters'
 * textProblem('ok') // undefined
 */

// With the `u` flag, \p{Cs} matches only surrogates that are not part of a pair.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why `value` cannot be stored, as the end of a sentence ("must not contain NUL characters"),
 * or undefined when it can.
 *
 * @example
 * textProblem('sur\ud800x') // 'must be well-formed Unicode (no lone surrogates)'
 */
export function textProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain NUL characters';
  if (LONE_SURROGATE.test(value)) return 'must be well-formed Unicode (no lone surrogates)';
  return undefined;
}
