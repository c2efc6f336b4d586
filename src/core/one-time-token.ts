/**
 * One-time tokens (SPEC §10): the secrets of email-verification and password-reset links.
 * 256 random bits, URL-safe (OWASP Forgot Password Cheat Sheet: a CSPRNG token of enough
 * entropy, single use, expiring); only their SHA-256 hash is stored, so a copy of the
 * database opens no account. A plain hash suffices (no salt, no slow hash): the token has
 * full entropy, nothing to guess a dictionary for.
 *
 * @example
 * const token = generateOneTimeToken();
 * await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hashOneTimeToken(token), userId, email, expiresAt }, now, { mail });
 */
import { createHash, randomBytes } from 'node:crypto';
import { systemClock, type Clock } from './clock.ts';
import type { PruneStep } from './housekeeping.ts';
import type { OneTimeTokenPurpose, Store } from './store.ts';

/** How long each kind of token lives, in milliseconds: a verification link 24 h, a reset link 30 min (SPEC §10). */
export const ONE_TIME_TOKEN_TTL_MS: Readonly<Record<OneTimeTokenPurpose, number>> = Object.freeze({
  verify_email: 24 * 3_600_000,
  password_reset: 30 * 60_000,
});

/** A new token: 256 random bits, base64url (43 characters). */
export function generateOneTimeToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What the store keeps of a token. */
export function hashOneTimeToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * True when `token` has the shape of one of ours (43 base64url characters). Anything else
 * is refused before it is hashed or looked up — with the same answer as an unknown token.
 */
export function looksLikeOneTimeToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}

/**
 * The prune step for one-time tokens (SPEC §9.4): expired ones go, used or not — an expired
 * token is refused whether its row exists or not, so deleting it changes no answer.
 *
 * @example
 * runPrune([...sessionPruneSteps(store, ttls), oneTimeTokenPruneStep(store)]);
 */
export function oneTimeTokenPruneStep(store: Pick<Store, 'pruneOneTimeTokens'>, options: { clock?: Clock } = {}): PruneStep {
  const clock = options.clock ?? systemClock;
  return { name: 'one_time_tokens', run: (limit) => store.pruneOneTimeTokens(clock(), limit) };
}
