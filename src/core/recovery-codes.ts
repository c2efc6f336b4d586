/**
 * Recovery codes (SPEC §10): ten single-use codes handed out once when TOTP is turned on, for
 * a person who lost the authenticator. Each is 80 random bits written as four groups of four
 * base32 letters (`abcd-efgh-ijkm-nopq`); only SHA-256 hashes are stored (like refresh tokens:
 * the codes are random enough that a fast hash is safe, OWASP Multifactor Authentication
 * Cheat Sheet, "Recovery codes"). Input is compared case-insensitively, with or without the
 * dashes.
 *
 * @example
 * const codes = generateRecoveryCodes(); // shown once
 * const hashes = codes.map((code) => hashRecoveryCode(normalizeRecoveryCode(code)!));
 */
import { createHash, randomBytes } from 'node:crypto';

/** How many codes a person gets when TOTP is turned on. */
export const RECOVERY_CODE_COUNT = 10;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const GROUPS = 4;
const GROUP_LENGTH = 4;
/** What a code is once dashes are dropped and letters lowered. */
const CANONICAL = new RegExp(`^[a-z2-7]{${GROUPS * GROUP_LENGTH}}$`);
/** What a person may type: the letters in any case, the dashes where they were, or none. */
const TYPED = new RegExp(`^[A-Za-z2-7]{${GROUP_LENGTH}}(-?[A-Za-z2-7]{${GROUP_LENGTH}}){${GROUPS - 1}}$`);

/** One code: 16 letters of base32 (5 bits each: 80 bits), in groups of four. */
function generateRecoveryCode(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let letters = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      letters += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return letters.match(new RegExp(`.{${GROUP_LENGTH}}`, 'g'))!.join('-');
}

/**
 * Ten fresh codes, all different.
 *
 * @example
 * generateRecoveryCodes() // ['k3vq-7dxa-mw2p-q4rt', …]
 */
export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) codes.add(generateRecoveryCode());
  return [...codes];
}

/**
 * The canonical form of a typed code (lower case, no dashes), or undefined when it cannot be
 * a recovery code at all (a malformed request, refused before any lookup).
 *
 * @example
 * normalizeRecoveryCode('K3VQ-7DXA-MW2P-Q4RT') // 'k3vq7dxamw2pq4rt'
 * normalizeRecoveryCode('k3vq 7dxa') // undefined
 */
export function normalizeRecoveryCode(input: string): string | undefined {
  if (!TYPED.test(input)) return undefined;
  const canonical = input.replaceAll('-', '').toLowerCase();
  return CANONICAL.test(canonical) ? canonical : undefined;
}

/**
 * What the store keeps of a code (SHA-256 of its canonical form, base64url).
 *
 * @example
 * await store.useRecoveryCode(user.id, hashRecoveryCode(normalizeRecoveryCode(typed)!), Date.now());
 */
export function hashRecoveryCode(canonical: string): string {
  return createHash('sha256').update(`portcullis/recovery-code\0${canonical}`).digest('base64url');
}
