import assert from 'node:assert/strict';
import { test } from 'node:test';
import { textProblem } from './text.ts';
import { foldCase, loginNameProblem, usernameKey, usernameProblem } from './username.ts';

test('usernames are compared case-insensitively after NFKC', () => {
  assert.equal(usernameKey('JohnDoe'), usernameKey('johndoe'));
  assert.equal(usernameKey('ｊｏｈｎ'), 'john');
  assert.equal(usernameKey('ﬁx'), 'fix');
});

test('the username key uses full Unicode case folding, not lower-casing (RFC 8265 §3.3.2)', () => {
  // Expected values are CaseFolding.txt's C + F mappings.
  const same = [
    ['Straße', 'STRASSE', 'strasse', 'STRAẞE', 'straẞe'], // ß and capital ẞ fold to "ss"
    ['ΟΔΟΣ', 'οδος', 'οδοσ', 'ΟΔΟς'], // final sigma ς folds to σ
    ['ﬁne', 'FINE', 'fine'], // ligature (NFKC, then folding)
    ['\u212aelvin', 'Kelvin', 'kelvin'], // KELVIN SIGN
    ['Ångström', '\u212bngström', 'A\u030angstro\u0308m'], // ANGSTROM SIGN, decomposed letters
    ['İstanbul', 'i\u0307stanbul'], // İ → i + COMBINING DOT ABOVE (default, not Turkic, folding)
    ['ŉ', 'ʼn', 'ʼN'], // F mapping to two characters
    ['ᾈ', 'ᾀ', 'ἀι', 'ἈΙ'], // iota subscript forms fold to a vowel + ι
    ['Ꭰ', 'ꭰ'], // Cherokee folds to the upper-case letters
  ];
  for (const group of same) {
    for (const name of group) assert.equal(usernameKey(name), usernameKey(group[0]!), `${name} ~ ${group[0]}`);
  }
  assert.equal(foldCase('Straße ΟΔΟΣ'), 'strasse οδοσ');
  assert.equal(foldCase('ẞ'), 'ss');
  assert.equal(foldCase('ς'), 'σ');
  assert.equal(foldCase('İ'), 'i\u0307');
  assert.equal(foldCase('Ꭰꭰ'), 'ᎠᎠ');
  // Default folding keeps the Turkic dotless ı apart from i (and from I).
  assert.equal(foldCase('ı'), 'ı');
  assert.notEqual(usernameKey('ıi'), usernameKey('ii'));
  assert.notEqual(usernameKey('ıi'), usernameKey('II'));
});

test('the username key is stable: the key of a key is itself, for every BMP character', () => {
  // Checked against CaseFolding.txt (Unicode 15) over all code points when written; here the
  // property that matters to stored keys and the migration: folding twice changes nothing.
  for (let cp = 0; cp <= 0xffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const key = usernameKey(String.fromCodePoint(cp));
    if (usernameKey(key) !== key) assert.fail(`U+${cp.toString(16)}: ${key} → ${usernameKey(key)}`);
  }
});

test('usernames are 1–128 characters without spaces or control characters', () => {
  assert.equal(usernameProblem('johndoe'), undefined);
  assert.equal(usernameProblem('émile.ß-42'), undefined);
  assert.equal(usernameProblem('x'.repeat(128)), undefined);
  for (const bad of ['', 'x'.repeat(129), 'john doe', 'john\tdoe', 'john\u0000', 'a\u200bb', 'x\u00a0y', 'x\u2028y']) {
    assert.notEqual(usernameProblem(bad), undefined, JSON.stringify(bad));
  }
});

test('refuses ill-formed Unicode, "." and ".." as usernames', () => {
  for (const bad of ['sur\ud800x', '\udc00', 'a\ud83d', '\ude00b']) {
    assert.equal(usernameProblem(bad), 'Username must be well-formed Unicode (no lone surrogates)', JSON.stringify(bad));
    assert.notEqual(loginNameProblem(bad), undefined, JSON.stringify(bad));
  }
  for (const bad of ['.', '..', '．．', '\u2025']) assert.equal(usernameProblem(bad), 'Username must not be "." or ".."', bad);
  for (const fine of ['...', '.a', 'a.', 'x-y']) assert.equal(usernameProblem(fine), undefined, fine);
});

test('new usernames are in the PRECIS IdentifierClass (RFC 8264 §4.2)', () => {
  for (const fine of ['john_doe', 'a!#$%&*+/=?^`{|}~', 'Łukasz', '山田', 'ñandú', 'Müller', 'ßtraße', 'θεός', 'ς', 'l·l', 'ア・イ', 'א׳', 'x〇', 'نور٣', 'ÆØÅ']) {
    assert.equal(usernameProblem(fine), undefined, fine);
  }
  for (const bad of ['smile😀', 'a©', 'x€', '¿qué', 'a·b', '·', 'ab\u0640', 'x\u1100', '٣۳', 'x\u{e000}', 'x\u{10ffff}', '\u0378', '„x"']) {
    assert.notEqual(usernameProblem(bad), undefined, JSON.stringify(bad));
  }
  // Compatibility characters are mapped by NFKC (SPEC §3) rather than refused.
  assert.equal(usernameProblem('ｊｏｈｎ'), undefined);
  assert.equal(usernameProblem('x²'), undefined);
  // Names from before these rules still log in: the login check is the shape check only.
  assert.equal(loginNameProblem('smile😀'), undefined);
});

test('textProblem names NUL and lone surrogates', () => {
  assert.equal(textProblem('fine 😀'), undefined);
  assert.equal(textProblem('a\u0000'), 'must not contain NUL characters');
  assert.equal(textProblem('\ud800'), 'must be well-formed Unicode (no lone surrogates)');
});
