/**
 * Checks a confidential client's secret against its stored record, remembering a secret that
 * verified for as long as that record object is the one in use. A resource server sends the
 * same id and secret with every introspection (SPEC §7.5), so the SHA-256 and the decoding of
 * the stored hash are done once per client record rather than once per request.
 *
 * Why it cannot outlive a rotation or a removal: the memory is keyed by the record *object*
 * (a WeakMap), and the authenticator's client cache hands out a new object whenever it reads
 * the client again — which it does after every change to any client, in this process at once
 * and from other processes through the change feed (SQLite's data version, PostgreSQL's
 * NOTIFY), exactly when it stops trusting its cached copy. A rotated secret therefore meets a
 * new record and the full check; a removed client is not found at all. As a second guard the
 * remembered secret is tied to the `secretHash` it verified against.
 *
 * The comparison stays constant-time (OWASP Authentication Cheat Sheet, "Compare … in
 * constant time"): `timingSafeEqual` over equal-length buffers, and a secret that does not
 * match the remembered one falls through to the full hash check.
 *
 * @example
 * if (!checkClientSecret(record, secret)) throw new InvalidClientError();
 */
import { timingSafeEqual } from 'node:crypto';
import { MAX_CLIENT_SECRET_LENGTH, verifyClientSecret } from './clients.ts';
import type { ClientRecord } from './store.ts';

/** The secret that verified against a record (by object identity), and the hash it matched. */
const verified = new WeakMap<ClientRecord, { secretHash: string; secret: Buffer }>();

/** Whether `secret` is the client's current secret (false for a public client, which has none). */
export function checkClientSecret(record: ClientRecord, secret: string): boolean {
  const { secretHash } = record;
  if (secretHash === null || secret.length === 0 || secret.length > MAX_CLIENT_SECRET_LENGTH) return false;
  const known = verified.get(record);
  if (known !== undefined && known.secretHash === secretHash) {
    const given = Buffer.from(secret, 'utf8');
    if (given.length === known.secret.length && timingSafeEqual(given, known.secret)) return true;
  }
  if (!verifyClientSecret(secret, secretHash)) return false;
  verified.set(record, { secretHash, secret: Buffer.from(secret, 'utf8') });
  return true;
}
