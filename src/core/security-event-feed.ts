/**
 * The transmitter's side of the security event feed (SPEC §8): RFC 8936 poll delivery from
 * each receiver's queue, SETs signed when they are delivered, and the long poll.
 *
 * Signing. A SET (RFC 8417) is signed with a key of its own set — Ed25519 key pairs kept like
 * the access-token keys (`openKeyRing`, sealed with the secret key) in a table of their own —
 * so it is asymmetric even when access tokens are HS256, and its public keys are a JWKS of
 * their own (the SSF configuration's `jwks_uri`). It is signed at delivery, with the issuer in
 * effect for the poll (with no `PORTCULLIS_ISSUER`, the origin the receiver polls, as for
 * every other URL Portcullis names); EdDSA is deterministic, so a SET delivered again is the
 * same text.
 *
 * Polling (RFC 8936 §2.4). A poll first removes what it acknowledges (`ack`) and reports
 * (`setErrs`) from that receiver's queue — never another's — then answers up to `maxEvents`
 * of the rest, oldest first, and whether more wait (`moreAvailable`). Nothing is removed
 * before it is acknowledged, so an unacknowledged SET comes again in the next poll. With
 * `returnImmediately: false` and nothing queued, the poll is held until a SET arrives for that
 * receiver, at most `holdMs` (≤ 30 s, SPEC §8): held polls wake when the store reports a
 * change (this process's writes at once, other instances' through PostgreSQL NOTIFY,
 * another process's on the same SQLite file through its data version) and check, one query
 * for all of them, which receivers have SETs now. A held poll also ends when its client goes
 * away (`signal`) and when the feed closes (server shutdown).
 *
 * @example
 * const feed = createSecurityEventFeed({ store: securityEventStore, keyRing: setKeyRing });
 * const { sets, moreAvailable } = await feed.poll({ receiver: clientId, issuer, ...parsePollRequest(body) });
 */
import { createSigner } from 'fast-jwt';
import type { KeyRing } from './key-ring.ts';
import type { PollRequest } from './poll-request.ts';
import type { QueuedSecurityEvent, SecurityEventStore } from './security-events.ts';
import type { Jwks } from './signing-keys.ts';
import { SET_TYPE, type SecurityEventClaims } from '../resource-server/event-types.ts';

/** The longest a poll is held unless told otherwise (SPEC §8: at most 30 s). */
export const DEFAULT_HOLD_MS = 25_000;
/** SPEC §8's bound on the long poll. */
export const MAX_HOLD_MS = 30_000;
/** Checks for held polls start at most this often, however many changes arrive. */
const CHECK_SPACING_MS = 10;

/**
 * What `createSecurityEventFeed` needs.
 *
 * @example
 * const options: SecurityEventFeedOptions = { store: createSecurityEventStore(store), keyRing: await openSecurityEventKeyRing(store, secretKey, 1800) };
 */
export interface SecurityEventFeedOptions {
  store: SecurityEventStore;
  /** The SET signing keys (a set of their own, EdDSA). */
  keyRing: KeyRing;
  /** How long a long poll is held at most, in milliseconds (1–30 000). Default 25 000. */
  holdMs?: number;
}

/** One poll of one receiver: the validated body and who asks. */
export interface FeedPoll extends PollRequest {
  /** The authenticated receiver's `client_id`. */
  receiver: string;
  /** The issuer in effect for this request: the SETs' `iss`. */
  issuer: string;
  /** Aborted when the client goes away: a held poll ends. */
  signal?: AbortSignal | undefined;
}

/** RFC 8936 §2.4: the answer to a poll. */
export interface PollResponse {
  sets: Record<string, string>;
  moreAvailable: boolean;
}

/**
 * The feed of one process.
 *
 * @example
 * const answer = await feed.poll({ receiver, issuer, ack: [], setErrs: {}, maxEvents: 10, returnImmediately: true });
 */
export interface SecurityEventFeed {
  /** Acknowledges, then answers the receiver's queued SETs (holding the request when asked and there are none). */
  poll(request: FeedPoll): Promise<PollResponse>;
  /** The public keys that verify SETs (the SSF configuration's `jwks_uri`). */
  jwks(): Jwks;
  /** Polls held right now (for tests and metrics). */
  heldPolls(): number;
  /** Answers every held poll at once and holds no more (server shutdown). */
  close(): void;
}

/** The claims of a queued SET for `issuer` (RFC 8417 §2.2, OpenID SSF 1.0 §4: the subject is `sub_id`). */
export function securityEventClaims(event: QueuedSecurityEvent, issuer: string): SecurityEventClaims {
  const iat = Math.floor(event.time / 1000);
  return {
    iss: issuer,
    iat,
    jti: event.jti,
    aud: event.receiver,
    txn: event.eventId,
    sub_id: { format: 'opaque', id: event.subject },
    events: { [event.type]: { ...event.payload, event_timestamp: iat } },
  };
}

/**
 * The feed over a queue store and the SET keys.
 *
 * @example
 * const feed = createSecurityEventFeed({ store: createSecurityEventStore(store), keyRing });
 */
export function createSecurityEventFeed(options: SecurityEventFeedOptions): SecurityEventFeed {
  const { store, keyRing } = options;
  const holdMs = options.holdMs ?? DEFAULT_HOLD_MS;
  if (!Number.isInteger(holdMs) || holdMs < 1 || holdMs > MAX_HOLD_MS) throw new TypeError(`holdMs must be a whole number of milliseconds from 1 to ${MAX_HOLD_MS}, got ${String(holdMs)}`);
  let signer: { kid: string; sign: (claims: SecurityEventClaims) => string } | undefined;
  let closed = false;

  const sign = (claims: SecurityEventClaims): string => {
    const key = keyRing.keySet().signing;
    const kid = key.kid as string;
    if (signer?.kid !== kid) {
      // RFC 8417 §2.3: `typ` secevent+jwt, so no SET passes for another kind of JWT.
      const signWith = createSigner({ key: key.privateKey, algorithm: key.alg, kid, header: { alg: key.alg, typ: SET_TYPE } });
      signer = { kid, sign: (c) => signWith(c as unknown as Record<string, unknown>) };
    }
    return signer.sign(claims);
  };

  // Held polls, by receiver: each waiter's wake-up.
  const waiters = new Map<string, Set<() => void>>();
  let unwatch: (() => void) | undefined;
  let checking: Promise<void> | undefined;
  let again = false;

  /** One query for every receiver with a held poll; wakes those that have SETs now. */
  const check = (): void => {
    if (checking) {
      again = true;
      return;
    }
    checking = (async () => {
      do {
        again = false;
        const receivers = [...waiters.keys()];
        if (receivers.length === 0) break;
        let ready: Set<string>;
        try {
          ready = await store.receiversWithSecurityEvents(receivers);
        } catch {
          // The database is away: held polls wait for the next change or their end.
          break;
        }
        for (const receiver of ready) for (const wake of [...(waiters.get(receiver) ?? [])]) wake();
        if (again) await new Promise((resolve) => setTimeout(resolve, CHECK_SPACING_MS));
      } while (again && waiters.size > 0);
    })().finally(() => {
      checking = undefined;
    });
  };

  /** Resolves when a SET may have arrived for `receiver`, after `holdMs`, on `signal`, or on close. */
  const wait = (receiver: string, signal: AbortSignal | undefined): Promise<void> =>
    new Promise<void>((resolve) => {
      let set = waiters.get(receiver);
      if (!set) waiters.set(receiver, (set = new Set()));
      const held = set;
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        held.delete(done);
        if (held.size === 0 && waiters.get(receiver) === held) waiters.delete(receiver);
        if (waiters.size === 0) {
          unwatch?.();
          unwatch = undefined;
        }
        resolve();
      };
      const timer = setTimeout(done, holdMs);
      signal?.addEventListener('abort', done, { once: true });
      held.add(done);
      unwatch ??= store.watchSecurityEvents(check);
      // A SET queued between the empty read and this wait announced itself to nobody: look once more.
      check();
    });

  return {
    async poll(request) {
      const { receiver, maxEvents } = request;
      // RFC 8936 §2.4.1, §2.4.2: acknowledged and reported SETs leave this receiver's queue.
      const done = [...new Set([...request.ack, ...Object.keys(request.setErrs)])];
      if (done.length > 0) await store.removeSecurityEvents(receiver, done);
      if (maxEvents === 0) return { sets: {}, moreAvailable: (await store.listSecurityEvents(receiver, 1)).length > 0 };
      let queued = await store.listSecurityEvents(receiver, maxEvents + 1);
      if (queued.length === 0 && !request.returnImmediately && !closed && !request.signal?.aborted) {
        await wait(receiver, request.signal);
        if (request.signal?.aborted) return { sets: {}, moreAvailable: false };
        queued = await store.listSecurityEvents(receiver, maxEvents + 1);
      }
      const batch = queued.slice(0, maxEvents);
      return {
        sets: Object.fromEntries(batch.map((event) => [event.jti, sign(securityEventClaims(event, request.issuer))])),
        moreAvailable: queued.length > maxEvents,
      };
    },
    jwks: () => keyRing.jwks(),
    heldPolls: () => [...waiters.values()].reduce((n, s) => n + s.size, 0),
    close() {
      closed = true;
      for (const set of [...waiters.values()]) for (const wake of [...set]) wake();
    },
  };
}
