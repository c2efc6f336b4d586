/**
 * Storage of the TOTP second factor (SPEC §10): each user's shared secret (sealed), its state
 * (pending until a first code confirms it) and the last time step a code was accepted in; the
 * user's recovery codes (hashes, single use); and the short-lived `mfa_token`s that carry a
 * login from the password step to the code step (hashes, single use). Part of `Store`; the
 * contracts are written on each method and run by test/store-contract.test.ts on SQLite and
 * PostgreSQL. Everything here goes with its user (deleting a user deletes it). Times are
 * milliseconds since the epoch.
 *
 * @example
 * const totp = await store.findTotp(user.id); // undefined when the user never set TOTP up
 * const on = totp !== undefined && totp.confirmedAt !== null;
 */
import type { NewAuditEvent } from './events.ts';

/**
 * A user's TOTP as stored.
 *
 * @example
 * const totp: TotpRecord | undefined = await store.findTotp(user.id); console.log(totp?.confirmedAt === null ? 'pending' : 'on');
 */
export interface TotpRecord {
  userId: string;
  /** The shared secret, sealed (`sealTotpSecret`); never the secret itself. */
  secret: string;
  createdAt: number;
  /** When a first code confirmed it; null while it is pending (not yet asked at login). */
  confirmedAt: number | null;
  /** The newest time step (RFC 6238 T) a code was accepted in; null before the first. */
  lastStep: number | null;
}

/**
 * A login waiting for its second factor: what the password step decided, kept until the code
 * step (or 5 minutes). Only the token's hash is stored.
 *
 * @example
 * await store.createMfaToken({ tokenHash, userId: user.id, scopes: ['me'], clientId: null, createdAt: now, expiresAt: now + 300_000 });
 */
export interface MfaTokenRecord {
  tokenHash: string;
  userId: string;
  /** The scopes the password step asked for ([] for all the user holds). */
  scopes: string[];
  /** The client that asked; the code step must come from the same one. */
  clientId: string | null;
  createdAt: number;
  expiresAt: number;
}

/**
 * Storage of TOTP secrets, recovery codes and mfa tokens; the contract of each method is
 * written on it.
 *
 * @example
 * if (!(await store.useTotpStep(user.id, step))) throw new InvalidGrantError('Invalid or already used code');
 */
export interface MfaStore {
  /** The user's TOTP (pending or confirmed), or undefined when there is none. */
  findTotp(userId: string): Promise<TotpRecord | undefined>;
  /**
   * Stores `sealedSecret` as the user's pending TOTP, replacing a pending one (and its
   * creation time). Returns false, writing nothing, when the user's TOTP is confirmed: a
   * confirmed secret is only ever removed by `deleteTotp`. Atomic: racing calls leave one
   * pending secret.
   */
  savePendingTotp(userId: string, sealedSecret: string, now: number): Promise<boolean>;
  /**
   * Confirms the pending TOTP whose sealed secret is `sealedSecret` (so a confirmation for a
   * secret replaced meanwhile confirms nothing), in one transaction: marks it confirmed at
   * `now` with `step` as its last used step, replaces the user's recovery codes with
   * `recoveryCodeHashes` (unused), and stores `event`. Returns false, writing nothing, when the
   * user has no pending TOTP with that secret (none, another one, or already confirmed).
   */
  confirmTotp(userId: string, sealedSecret: string, step: number, recoveryCodeHashes: readonly string[], now: number, event?: NewAuditEvent): Promise<boolean>;
  /**
   * Deletes the user's TOTP (pending or confirmed), recovery codes and mfa tokens, in one
   * transaction; `event` is stored with them only when a confirmed TOTP was deleted. Returns
   * what was there: `'on'`, `'pending'`, or undefined (nothing was deleted).
   */
  deleteTotp(userId: string, event?: NewAuditEvent): Promise<'on' | 'pending' | undefined>;
  /**
   * Records that a code of time step `step` was accepted, only if the user's TOTP is confirmed
   * and no code of this step or a later one was accepted before; returns whether it did. A
   * conditional update: however many requests (on however many instances) race with codes of
   * one step, exactly one gets true (RFC 6238 §5.2, no replay).
   */
  useTotpStep(userId: string, step: number): Promise<boolean>;
  /**
   * Marks the user's unused recovery code with this hash used at `now`; returns whether it
   * did. Racing calls with one code: exactly one gets true.
   */
  useRecoveryCode(userId: string, codeHash: string, now: number): Promise<boolean>;
  /** How many of the user's recovery codes are unused (0 when there are none). */
  countRecoveryCodes(userId: string): Promise<number>;
  /**
   * Stores an mfa token. In the same transaction, deletes the user's tokens that expired by
   * `token.createdAt`, and then the oldest of the user's tokens beyond `maxPerUser`, so
   * repeated password steps cannot pile up rows.
   */
  createMfaToken(token: MfaTokenRecord, maxPerUser: number): Promise<void>;
  /** The mfa token with this hash if it has not expired at `now` (and was not consumed), else undefined. */
  findMfaToken(tokenHash: string, now: number): Promise<MfaTokenRecord | undefined>;
  /**
   * Consumes (deletes) the mfa token with this hash if it has not expired at `now`; returns
   * whether this call did. Racing calls with one token: exactly one gets true.
   */
  consumeMfaToken(tokenHash: string, now: number): Promise<boolean>;
  /** Deletes at most `limit` mfa tokens that expired before `before`, in one statement; returns how many. */
  pruneExpiredMfaTokens(before: number, limit: number): Promise<number>;
}
