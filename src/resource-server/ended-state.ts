/**
 * What the security event feed has ended, held in memory and bounded: sessions (by `sid`),
 * subjects (by `sub`, with the time before which their tokens are refused, and why) and
 * signing keys (by `kid`). An entry only matters while a token it refuses can still be live,
 * so each one is dropped `retentionMs` (the longest token lifetime, plus leeway) after its
 * event. On top of that, at most `maxEntries` are kept: when a new one would pass the cap,
 * the oldest is evicted — and, so that eviction never lets an ended token back in, every token
 * issued at or before that evicted event becomes *suspect* until the entry would have expired
 * (the verifier then asks introspection, or refuses it: a fresh token is unaffected).
 *
 * @example
 * const ended = createEndedState({ maxEntries: 100_000, retentionMs: 3_605_000 });
 * ended.endSession('sid-1', 1767225600, Date.now());
 * ended.refusal({ sid: 'sid-1', sub: 'u', iat: 1767225000 }, 'k1', Date.now()); // 'session-ended'
 */
import type { InvalidTokenReason } from './errors.ts';

/** Why a subject's tokens are refused: the event that ended them. */
export type SubjectEnd = 'credentials-changed' | 'inactive' | 'account-purged';

/** Why `refusal` refuses a token: an InvalidTokenError reason, or `inactive` (the account is disabled: InactiveUserError). */
export type Refusal = Extract<InvalidTokenReason, 'session-ended' | 'key-revoked' | 'credentials-changed' | 'account-purged' | 'suspect'> | 'inactive';

interface Entry {
  /** Local time (ms) after which no token the entry refuses can be live. */
  expiresAt: number;
  /** When the event happened, in the transmitter's seconds (tokens' `iat` are in the same clock). */
  eventTime: number;
}

interface SubjectEntry extends Entry {
  reason: SubjectEnd;
}

export interface EndedStateOptions {
  maxEntries: number;
  retentionMs: number;
}

/** The counts `RemoteVerifier.status()` reports. */
export interface EndedCounts {
  endedSessions: number;
  endedSubjects: number;
  revokedKeys: number;
  /** Entries evicted by the cap since the start. */
  evicted: number;
}

export interface EndedState {
  endSession(sid: string, eventTime: number, now: number): void;
  endSubject(sub: string, eventTime: number, reason: SubjectEnd, now: number): void;
  revokeKey(kid: string, eventTime: number, now: number): void;
  /** Whether tokens of `kid` are refused (checked before their signature). */
  keyRevoked(kid: string | undefined): boolean;
  /** Why the feed refuses a token with these claims, or undefined. */
  refusal(claims: { sid?: string | undefined; sub: string; iat: number }, kid: string | undefined, now: number): Refusal | undefined;
  /** Drops the entries whose tokens have all expired. */
  prune(now: number): void;
  counts(): EndedCounts;
}

/** Creates an empty ended-state (see the module). */
export function createEndedState(options: EndedStateOptions): EndedState {
  const sessions = new Map<string, Entry>();
  const subjects = new Map<string, SubjectEntry>();
  const keys = new Map<string, Entry>();
  const maps: Map<string, Entry>[] = [sessions, subjects, keys];
  /** Tokens issued at or before `before` (seconds) are suspect until `until` (ms): see the module. */
  const watermark = { before: Number.NEGATIVE_INFINITY, until: Number.NEGATIVE_INFINITY };
  let evicted = 0;

  const size = (): number => sessions.size + subjects.size + keys.size;
  // Entries live a fixed time from their event, so each map is (nearly) in expiry order: the
  // oldest is first, and pruning stops at the first live one.
  const prune = (now: number): void => {
    for (const map of maps) {
      for (const [key, entry] of map) {
        if (entry.expiresAt > now) break;
        map.delete(key);
      }
    }
  };
  const evictOldest = (): boolean => {
    let oldest: { map: Map<string, Entry>; key: string; entry: Entry } | undefined;
    for (const map of maps) {
      const first = map.entries().next();
      if (first.done) continue;
      const [key, entry] = first.value;
      if (!oldest || entry.expiresAt < oldest.entry.expiresAt) oldest = { map, key, entry };
    }
    if (!oldest) return false;
    oldest.map.delete(oldest.key);
    watermark.before = Math.max(watermark.before, oldest.entry.eventTime);
    watermark.until = Math.max(watermark.until, oldest.entry.expiresAt);
    evicted += 1;
    return true;
  };
  const add = <E extends Entry>(map: Map<string, E>, key: string, entry: E, now: number): void => {
    map.delete(key); // re-added at the end, where the newest are
    if (size() >= options.maxEntries) prune(now);
    while (size() >= options.maxEntries && evictOldest());
    map.set(key, entry);
  };
  // The tokens an event ends were issued before it: they are all expired by the event time
  // (by the later of its clock and ours) plus the longest token lifetime.
  const expiry = (eventTime: number, now: number): number => Math.max(now, eventTime * 1000) + options.retentionMs;

  return {
    endSession(sid, eventTime, now) {
      add(sessions, sid, { eventTime, expiresAt: expiry(eventTime, now) }, now);
    },
    endSubject(sub, eventTime, reason, now) {
      const existing = subjects.get(sub);
      // A later event of the same subject moves its line forward; an older one changes nothing.
      if (existing && existing.eventTime >= eventTime) return;
      add(subjects, sub, { eventTime, reason, expiresAt: expiry(eventTime, now) }, now);
    },
    revokeKey(kid, eventTime, now) {
      add(keys, kid, { eventTime, expiresAt: expiry(eventTime, now) }, now);
    },
    keyRevoked: (kid) => kid !== undefined && keys.has(kid),
    refusal(claims, kid, now) {
      if (kid !== undefined && keys.has(kid)) return 'key-revoked';
      if (claims.sid !== undefined && sessions.has(claims.sid)) return 'session-ended';
      const subject = subjects.get(claims.sub);
      // At or before: a token of the event's own second may be older than the event.
      if (subject && claims.iat <= subject.eventTime) return subject.reason;
      if (claims.iat <= watermark.before && now < watermark.until) return 'suspect';
      return undefined;
    },
    prune,
    counts: () => ({ endedSessions: sessions.size, endedSubjects: subjects.size, revokedKeys: keys.size, evicted }),
  };
}
