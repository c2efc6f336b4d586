/**
 * Asymmetric signing keys (SPEC §3): key pairs made with `node:crypto`, their public JWKs
 * (RFC 7517) with RFC 7638 thumbprints as `kid`, private keys sealed at rest with a key
 * derived from the secret key, and the rule that turns the stored keys into a `KeySet`:
 * the newest unretired key signs; it and every key retired less than one access-token
 * lifetime ago (plus leeway) verify. The live, reloading ring is in `key-ring.ts`.
 *
 * @example
 * const key = await generateSigningKey('EdDSA', Date.now());
 * const jwk = publicJwk(key); // { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' }
 */
import { createHash, createPublicKey, generateKeyPair } from 'node:crypto';
import { LEEWAY_SECONDS, type KeySet, type SigningAlgorithm, type SigningKey } from './access-token.ts';
import type { NewAuditEvent } from './events.ts';
import { openSealedText, sealText } from './sealed-text.ts';

/** The algorithms that sign with a key pair and publish the public half in the JWKS. */
export type AsymmetricAlgorithm = Exclude<SigningAlgorithm, 'HS256'>;

/** True for EdDSA, ES256 and RS256. */
export function isAsymmetric(alg: SigningAlgorithm): alg is AsymmetricAlgorithm {
  return alg !== 'HS256';
}

/**
 * A signing key as stored: the private key sealed (and wiped to '' once the key is retired).
 *
 * @example
 * const [active] = await createSigningKeyStore(store).listSigningKeys(); console.log(active?.kid, active?.alg);
 */
export interface SigningKeyRecord {
  /** RFC 7638 thumbprint of the public key; the `kid` of its tokens' header. */
  kid: string;
  alg: AsymmetricAlgorithm;
  /** `sealPrivateKey` output; '' once retired (a retired key never signs again). */
  privateKey: string;
  /** SPKI PEM. */
  publicKey: string;
  createdAt: number;
  /** When a newer key replaced it; null for the active key. */
  retiredAt: number | null;
}

/**
 * Storage of signing keys. Contracts: at most one key is active (`retiredAt === null`) at any
 * time, however many processes write; every method announces its writes to `onKeysChanged`.
 *
 * @example
 * const keyStore: SigningKeyStore = createSigningKeyStore(store);
 * const ring = await openKeyRing({ store: keyStore, algorithm: 'ES256', secretKey, accessTokenTtl: 1800 });
 */
export interface SigningKeyStore {
  /** Every stored key: the active one first, then the retired ones, most recently retired first; [] when none. */
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /**
   * Inserts `key` as the active key only if no key is active; returns whether it did.
   * Several processes racing: exactly one inserts.
   */
  insertFirstSigningKey(key: SigningKeyRecord): Promise<boolean>;
  /**
   * Atomically retires the active key at `at` (wiping its private key) and inserts `key` as
   * the active one. With `expectedKid`, only if that key is still the active one: returns
   * false, writing nothing, when it is not. Without it, always rotates and returns true.
   */
  rotateSigningKey(key: SigningKeyRecord, at: number, expectedKid?: string): Promise<boolean>;
  /**
   * Deletes the key `kid` (a compromised key: it neither signs nor verifies again, and leaves
   * every JWKS). When it is the active key, `replacement` becomes the active one in the same
   * transaction, so there is always one active key. Returns the deleted key, or undefined
   * (writing nothing) when no key has this kid. Announced like a rotation. `event` (the audit
   * event `key.revoked`) is stored in the same transaction, only when the key was deleted.
   */
  revokeSigningKey(kid: string, replacement: SigningKeyRecord, event?: NewAuditEvent): Promise<SigningKeyRecord | undefined>;
  /** Calls `listener` when keys may have changed (this process's writes, and others' where seen). */
  onKeysChanged(listener: () => void): () => void;
}

/** A public JWK as published in the JWKS (RFC 7517 §4, RFC 7518 §6). */
export interface PublicJwk {
  kty: string;
  kid: string;
  alg: AsymmetricAlgorithm;
  use: 'sig';
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

/** The body of `GET /.well-known/jwks.json`. */
export interface Jwks {
  keys: PublicJwk[];
}

/** How often a running server re-reads the keys (another process may have rotated them). */
export const KEY_RELOAD_INTERVAL_MS = 1000;

/**
 * How long a retired key keeps verifying: every token it signed has expired by then. A
 * token is accepted up to `exp` + leeway, and another instance may have signed with the old
 * key until it noticed the rotation (at most one reload interval later).
 */
export function keyRetentionMs(accessTokenTtl: number): number {
  return (accessTokenTtl + LEEWAY_SECONDS) * 1000 + KEY_RELOAD_INTERVAL_MS;
}

const PEM = { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as const;

function generatePemPair(alg: AsymmetricAlgorithm): Promise<{ publicKey: string; privateKey: string }> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, publicKey: string, privateKey: string): void => (error ? reject(error) : resolve({ publicKey, privateKey }));
    // Asynchronous: an RSA key takes long enough to stall the event loop.
    if (alg === 'EdDSA') generateKeyPair('ed25519', PEM, done);
    else if (alg === 'ES256') generateKeyPair('ec', { namedCurve: 'P-256', ...PEM }, done);
    else generateKeyPair('rsa', { modulusLength: 2048, ...PEM }, done); // RFC 7518 §3.3: ≥ 2048 bits
  });
}

/** The public members of a key, as a JWK, without kid/alg/use. */
function publicMembers(publicKeyPem: string): Omit<PublicJwk, 'kid' | 'alg' | 'use'> {
  const jwk = createPublicKey(publicKeyPem).export({ format: 'jwk' });
  // Picked member by member: whatever the export holds, a private member (`d`, `p`, …) never leaves.
  if (jwk.kty === 'OKP') return { kty: 'OKP', crv: String(jwk.crv), x: String(jwk.x) };
  if (jwk.kty === 'EC') return { kty: 'EC', crv: String(jwk.crv), x: String(jwk.x), y: String(jwk.y) };
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: String(jwk.n), e: String(jwk.e) };
  throw new TypeError(`unsupported public key type ${String(jwk.kty)}`);
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: a stable, unique `kid`. */
export function jwkThumbprint(publicKeyPem: string): string {
  const m = publicMembers(publicKeyPem);
  // §3.2: the required members only, in lexicographic order, no whitespace.
  const canonical =
    m.kty === 'RSA'
      ? JSON.stringify({ e: m.e, kty: m.kty, n: m.n })
      : m.kty === 'EC'
        ? JSON.stringify({ crv: m.crv, kty: m.kty, x: m.x, y: m.y })
        : JSON.stringify({ crv: m.crv, kty: m.kty, x: m.x });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The public JWK of a key, with `kid`, `alg` and `use: "sig"` (RFC 7517 §4). */
export function publicJwk(key: { kid: string; alg: AsymmetricAlgorithm; publicKey: string }): PublicJwk {
  return { ...publicMembers(key.publicKey), kid: key.kid, alg: key.alg, use: 'sig' };
}

/** The JWKS of a key set: its asymmetric verifying keys; `{"keys": []}` under HS256 (never the secret). */
export function publicJwks(keys: KeySet): Jwks {
  const out: PublicJwk[] = [];
  for (const k of keys.verifying) {
    if (k.kid !== undefined && isAsymmetric(k.alg)) out.push(publicJwk({ kid: k.kid, alg: k.alg, publicKey: k.publicKey }));
  }
  return { keys: out };
}

/**
 * A fresh key pair with its private key in the clear (seal it before storing). A pair whose
 * thumbprint begins with `-` (1 in 64) is drawn again: `portcullis keys revoke KID` must be
 * typeable, and a command line reads a leading dash as an option. The `kid` stays the RFC 7638
 * thumbprint of the key it names.
 */
export async function generateSigningKey(alg: AsymmetricAlgorithm, now: number): Promise<SigningKeyRecord> {
  for (;;) {
    const { publicKey, privateKey } = await generatePemPair(alg);
    const kid = jwkThumbprint(publicKey);
    if (!kid.startsWith('-')) return { kid, alg, privateKey, publicKey, createdAt: now, retiredAt: null };
  }
}

/** The HKDF `info` of the key that seals signing keys (sealed-text.ts). */
const SIGNING_KEY_PURPOSE = 'portcullis/signing-key-at-rest';

/**
 * Encrypts a private key PEM (AES-256-GCM, key derived from the secret key, the `kid` bound
 * as associated data), so a copy of the database alone cannot sign tokens.
 */
export function sealPrivateKey(pem: string, kid: string, secretKey: string): string {
  return sealText(pem, kid, secretKey, SIGNING_KEY_PURPOSE);
}

/** Decrypts `sealPrivateKey` output; undefined when it was sealed under another secret key (or is empty). */
export function openPrivateKey(sealed: string, kid: string, secretKey: string): string | undefined {
  return openSealedText(sealed, kid, secretKey, SIGNING_KEY_PURPOSE);
}

/** The state of one stored key at a moment, for `portcullis keys list`. */
export interface KeyStatus {
  kid: string;
  alg: AsymmetricAlgorithm;
  createdAt: number;
  retiredAt: number | null;
  /** `active` signs; `retired` still verifies (until `verifiesUntil`); `expired` does neither. */
  status: 'active' | 'retired' | 'expired';
  verifiesUntil: number | null;
}

/** Classifies stored keys (newest first) at `now`. */
export function describeKeys(records: readonly SigningKeyRecord[], now: number, accessTokenTtl: number): KeyStatus[] {
  const retention = keyRetentionMs(accessTokenTtl);
  return records.map((r) => {
    const verifiesUntil = r.retiredAt === null ? null : r.retiredAt + retention;
    const status = verifiesUntil === null ? 'active' : verifiesUntil > now ? 'retired' : 'expired';
    return { kid: r.kid, alg: r.alg, createdAt: r.createdAt, retiredAt: r.retiredAt, status, verifiesUntil };
  });
}

/**
 * The key set at `now`: the active key signs (with `signingPem`, its opened private key);
 * it and the retired keys still inside their retention verify. Also returns when the set
 * next changes by itself (the earliest retention end), or Infinity.
 */
export function buildKeySet(
  records: readonly SigningKeyRecord[],
  signing: { kid: string; alg: AsymmetricAlgorithm; privateKey: string; publicKey: string },
  now: number,
  accessTokenTtl: number,
): { keys: KeySet; nextChangeAt: number } {
  const retention = keyRetentionMs(accessTokenTtl);
  const signingKey: SigningKey = { kid: signing.kid, alg: signing.alg, privateKey: signing.privateKey, publicKey: signing.publicKey };
  const verifying: SigningKey[] = [signingKey];
  let nextChangeAt = Infinity;
  for (const r of records) {
    if (r.kid === signing.kid) continue;
    // A key retired in the future cannot happen on one clock; treat it as retired now.
    const until = (r.retiredAt ?? now) + retention;
    if (until <= now) continue;
    verifying.push({ kid: r.kid, alg: r.alg, privateKey: '', publicKey: r.publicKey });
    nextChangeAt = Math.min(nextChangeAt, until);
  }
  return { keys: { signing: signingKey, verifying }, nextChangeAt };
}
