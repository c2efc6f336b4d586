/**
 * The live set of signing keys of one process (SPEC §3): loads the stored keys, makes sure
 * exactly one active key of the configured algorithm exists (creating the first one on first
 * start, once, however many instances start together), and keeps the `AccessTokens` in step
 * when keys change — right away in the process that rotated, before issuing a token in every
 * other process, on a token naming an unknown `kid`, on a store `keys` change event, and
 * every second. Retired keys drop out of verification and the JWKS when their retention
 * ends, checked against the injected clock before every verification.
 *
 * @example
 * const ring = await openKeyRing({ store: keyStore, algorithm: 'EdDSA', secretKey, accessTokenTtl: 1800 });
 * const tokens = ring.accessTokens({ issuer, clock });
 * await ring.rotate();
 */
import { performance } from 'node:perf_hooks';
import { createAccessTokens, type AccessTokens, type KeySet } from './access-token.ts';
import { systemClock, type Clock } from './clock.ts';
import { ConfigError } from './errors.ts';
import type { NewAuditEvent } from './events.ts';
import {
  buildKeySet,
  generateSigningKey,
  KEY_RELOAD_INTERVAL_MS,
  openPrivateKey,
  publicJwks,
  sealPrivateKey,
  type AsymmetricAlgorithm,
  type Jwks,
  type SigningKeyRecord,
  type SigningKeyStore,
} from './signing-keys.ts';

/**
 * One process's live signing keys, kept in step with the store.
 *
 * @example
 * const ring = await openKeyRing({ store: createSigningKeyStore(store), algorithm: 'EdDSA', secretKey, accessTokenTtl: 1800 });
 * await ring.rotate();
 */
export interface KeyRing {
  readonly algorithm: AsymmetricAlgorithm;
  readonly accessTokenTtl: number;
  /** The keys now: the signing key and every key that still verifies. */
  keySet(): KeySet;
  /** The public JWKS of the verifying keys. */
  jwks(): Jwks;
  /**
   * Re-reads the keys from the store with a read that starts after the call, so every change
   * committed before it is seen; calls made while a read is in flight share the next one.
   */
  reload(): Promise<void>;
  /** Reloads when `token`'s header names a kid this ring does not know (at most every 100 ms); never throws. */
  reloadForUnknownKid(token: string): Promise<void>;
  /** Retires the active key and makes a new one active, here at once. */
  rotate(): Promise<{ current: SigningKeyRecord; previous: SigningKeyRecord | undefined }>;
  /**
   * Revokes the key `kid` (SPEC §9.4): deleted from the store, so it stops verifying here at
   * once and in every other process at its next reload (≤ 1 s, sooner on a change
   * notification); when it was the active key a new key signs from now on. Returns the
   * revoked key and the key that signs now, or undefined when no stored key has this kid.
   * `event` (`key.revoked`, SPEC §9.2) is stored with the revocation, in its transaction.
   */
  revoke(kid: string, event?: NewAuditEvent): Promise<{ revoked: SigningKeyRecord; current: SigningKeyRecord } | undefined>;
  /** AccessTokens signing with the active key and verifying with the ring's keys (`issuer`, `audience`, `clientId` as in `createAccessTokens`). */
  accessTokens(options: { issuer?: string | undefined; clock?: Clock; audience?: string | undefined; clientId?: string | undefined; verifiedCacheSize?: number | undefined }): AccessTokens;
  /** Re-reads the keys every `intervalMs` (unref'd timer) until `close`. */
  start(intervalMs?: number): void;
  close(): void;
}

/**
 * What `openKeyRing` needs.
 *
 * @example
 * const options: KeyRingOptions = { store: createSigningKeyStore(store), algorithm: 'EdDSA', secretKey, accessTokenTtl: 1800 };
 */
export interface KeyRingOptions {
  store: SigningKeyStore;
  algorithm: AsymmetricAlgorithm;
  /** Seals private keys at rest. */
  secretKey: string;
  /** Seconds; a retired key verifies for this long (plus leeway) after its retirement. */
  accessTokenTtl: number;
  clock?: Clock;
  /**
   * Told when opening the ring rotated the active key by itself — the configured algorithm or
   * the secret key changed — in the one process whose rotation won (audit event `key.rotated`).
   */
  onAutomaticRotation?: ((rotation: { current: SigningKeyRecord; previous: SigningKeyRecord; reason: 'algorithm_changed' | 'secret_key_changed' }) => Promise<void> | void) | undefined;
}

const UNKNOWN_KID_RELOAD_MS = 100;
const ENSURE_ATTEMPTS = 4;

function headerKid(token: string): string | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot > 1024) return undefined;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header?.kid === 'string' ? header.kid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes sure one active key of `algorithm` that this secret key can open exists; creates or
 * rotates to a fresh one otherwise (first start, a changed algorithm, a changed secret key).
 * Conditional writes make racing processes agree on one key.
 */
async function ensureActiveKey(options: KeyRingOptions & { clock: Clock }): Promise<void> {
  const { store, algorithm, secretKey, clock } = options;
  for (let attempt = 0; attempt < ENSURE_ATTEMPTS; attempt++) {
    const active = (await store.listSigningKeys()).find((k) => k.retiredAt === null);
    if (active && active.alg === algorithm && openPrivateKey(active.privateKey, active.kid, secretKey) !== undefined) return;
    const fresh = await generateSigningKey(algorithm, clock());
    const sealed = { ...fresh, privateKey: sealPrivateKey(fresh.privateKey, fresh.kid, secretKey) };
    if (!active) await store.insertFirstSigningKey(sealed);
    else if (await store.rotateSigningKey(sealed, clock(), active.kid)) {
      await options.onAutomaticRotation?.({ current: sealed, previous: active, reason: active.alg !== algorithm ? 'algorithm_changed' : 'secret_key_changed' });
    }
    // Whether this process's write won or another's did, the next read sees the outcome.
  }
  throw new Error('could not settle on an active signing key: keys keep changing');
}

/**
 * Opens the rotating asymmetric signing keys kept in a `SigningKeyStore`: ensures one active
 * key (created once, however many instances start together), loads the keys and follows
 * other processes' rotations. Pass the ring to `createAuthService({ keyRing })`.
 *
 * @example
 * const keyRing = await openKeyRing({ store: createSigningKeyStore(store), algorithm: 'EdDSA', secretKey, accessTokenTtl: 1800 });
 * const service = createAuthService({ store, secretKey, issuer, keyRing });
 */
export async function openKeyRing(options: KeyRingOptions): Promise<KeyRing> {
  const opts = { ...options, clock: options.clock ?? systemClock };
  const { store, algorithm, secretKey, accessTokenTtl, clock } = opts;
  await ensureActiveKey(opts);

  let records: SigningKeyRecord[] = [];
  let signing: { kid: string; alg: AsymmetricAlgorithm; privateKey: string; publicKey: string } | undefined;
  let current: KeySet | undefined;
  let jwks: Jwks = { keys: [] };
  let nextChangeAt = Infinity;
  let fingerprint = '';
  let loadsStarted = 0;
  let loadsApplied = 0;
  let inflight: Promise<void> | undefined;
  let lastUnknownKidReload = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  const listeners = new Set<(keys: KeySet) => void>();
  const opened = new Map<string, string>();

  const rebuild = (): void => {
    if (!signing) return;
    const built = buildKeySet(records, signing, clock(), accessTokenTtl);
    nextChangeAt = built.nextChangeAt;
    const print = `${built.keys.signing.kid}|${built.keys.verifying.map((k) => k.kid).join(',')}`;
    if (print === fingerprint) return;
    fingerprint = print;
    current = built.keys;
    jwks = publicJwks(built.keys);
    for (const listener of listeners) listener(built.keys);
  };

  // Cheap and synchronous: drops keys whose retention ended, by the injected clock.
  const tick = (): void => {
    if (clock() >= nextChangeAt) rebuild();
  };

  const load = async (): Promise<void> => {
    const seq = ++loadsStarted;
    const fresh = await store.listSigningKeys();
    if (seq < loadsApplied) return; // a newer read already landed
    loadsApplied = seq;
    records = fresh;
    const active = fresh.find((k) => k.retiredAt === null);
    if (active) {
      let pem = opened.get(active.kid);
      if (pem === undefined) {
        pem = openPrivateKey(active.privateKey, active.kid, secretKey);
        if (pem !== undefined) opened.set(active.kid, pem);
      }
      // A key this process cannot open (another instance has a different secret key, which is
      // a misconfiguration) is verified with but not signed with: keep the previous signer.
      if (pem !== undefined) signing = { kid: active.kid, alg: active.alg, privateKey: pem, publicKey: active.publicKey };
    }
    if (!signing) throw new ConfigError('PORTCULLIS_SECRET_KEY', 'cannot open the active signing key; run `portcullis keys rotate`');
    rebuild();
  };

  // A caller of reload() must see every change committed before its call. A read already in
  // flight may have taken its snapshot before that change (PostgreSQL READ COMMITTED: each
  // statement sees what was committed when it began), so joining it is not enough: callers
  // that arrive while a read is in flight share one more read, started once it ends.
  let queued: Promise<void> | undefined;
  const reload = (): Promise<void> => {
    if (inflight === undefined) {
      const read = load().finally(() => {
        if (inflight === read) inflight = undefined;
      });
      inflight = read;
      return read;
    }
    return (queued ??= inflight
      .catch(() => {})
      .then(() => {
        queued = undefined;
        return reload();
      }));
  };
  const quietReload = (): void => void reload().catch(() => {});
  const unsubscribe = store.onKeysChanged(quietReload);
  await load();

  const ring: KeyRing = {
    algorithm,
    accessTokenTtl,
    keySet() {
      tick();
      return current!;
    },
    jwks() {
      tick();
      return jwks;
    },
    reload,
    async reloadForUnknownKid(token) {
      const kid = headerKid(token);
      if (kid === undefined || current!.verifying.some((k) => k.kid === kid)) return;
      // Anyone can send a token naming any kid: such tokens join a read in flight rather
      // than queue one more (reload() would), and start at most one read per 100 ms.
      if (inflight !== undefined) {
        await inflight.catch(() => {});
        return;
      }
      const now = performance.now();
      if (now - lastUnknownKidReload < UNKNOWN_KID_RELOAD_MS) return;
      lastUnknownKidReload = now;
      // Opportunistic: if the store cannot answer, the token is judged on the keys at hand.
      await reload().catch(() => {});
    },
    async rotate() {
      const previous = records.find((k) => k.retiredAt === null);
      const fresh = await generateSigningKey(algorithm, clock());
      const sealed = { ...fresh, privateKey: sealPrivateKey(fresh.privateKey, fresh.kid, secretKey) };
      await store.rotateSigningKey(sealed, clock());
      opened.set(fresh.kid, fresh.privateKey);
      // A read of its own, not a shared one that may have started before the write.
      await load();
      return { current: sealed, previous };
    },
    async revoke(kid, event) {
      const fresh = await generateSigningKey(algorithm, clock());
      const sealed = { ...fresh, privateKey: sealPrivateKey(fresh.privateKey, fresh.kid, secretKey) };
      const revoked = await store.revokeSigningKey(kid, sealed, event);
      if (!revoked) return undefined;
      opened.delete(kid);
      opened.set(fresh.kid, fresh.privateKey);
      await load();
      return { revoked, current: records.find((k) => k.retiredAt === null)! };
    },
    accessTokens({ issuer, clock: tokenClock, audience, clientId, verifiedCacheSize }) {
      const tokens = createAccessTokens({ keys: ring.keySet(), issuer, ttlSeconds: accessTokenTtl, clock: tokenClock ?? clock, audience, clientId, verifiedCacheSize });
      listeners.add((keys) => tokens.setKeys(keys));
      return {
        issue: (input) => tokens.issue(input),
        verify(token, options) {
          tick();
          return tokens.verify(token, options);
        },
        defaultAudience: (origin) => tokens.defaultAudience(origin),
        setKeys: (keys) => tokens.setKeys(keys),
      };
    },
    start(intervalMs = KEY_RELOAD_INTERVAL_MS) {
      if (timer) return;
      timer = setInterval(quietReload, intervalMs);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      unsubscribe();
      listeners.clear();
    },
  };
  return ring;
}
