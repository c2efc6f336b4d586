/**
 * Receiving one Security Event Token (RFC 8417) of the feed: verified — signature with a key
 * of the SSF configuration's `jwks_uri`, `typ` `secevent+jwt` (RFC 8417 §2.3), `iss` the
 * transmitter, `aud` naming this receiver's client id (RFC 8417 §2.2), `jti` the key it was
 * delivered under (RFC 8936 §2.2) — then applied to the ended-state. Event types this library
 * does not know are accepted and ignored (RFC 8417 §2.2: a recipient decides which events it
 * acts on). The outcome says what to tell the transmitter: acknowledge, report an error
 * (RFC 8936 §2.4 `setErrs`, codes of RFC 8935 §2.4), or neither yet — keep it unacknowledged
 * so it is delivered again, when the SET could not be checked for want of a key set.
 *
 * @example
 * const outcome = await receiveSet(jti, set, { keys, issuer, clientId, ended, onKeyRevoked, clock });
 * if (outcome.kind === 'applied') ack.push(jti);
 */
import type { EndedState, SubjectEnd } from './ended-state.ts';
import { InvalidTokenError } from './errors.ts';
import { ACCOUNT_DISABLED, ACCOUNT_PURGED, CREDENTIAL_CHANGE, KEY_REVOKED, SESSION_REVOKED } from './event-types.ts';
import { isObject } from './http.ts';
import type { KeySet } from './key-set.ts';

export interface ReceiveOptions {
  /** The SSF configuration's keys. */
  keys: KeySet;
  /** The transmitter's issuer (the SSF configuration's `issuer`). */
  issuer: string;
  /** This receiver's client id: the SETs' audience. */
  clientId: string;
  ended: EndedState;
  /** Called with the kid of a revoked access-token signing key. */
  onKeyRevoked(kid: string): void;
  clock: () => number;
}

/** What became of one SET. */
export type SetOutcome =
  | { kind: 'applied' }
  | { kind: 'rejected'; err: 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience'; description: string }
  | { kind: 'retry'; cause: unknown };

const SUBJECT_ENDS: Record<string, SubjectEnd> = {
  [CREDENTIAL_CHANGE]: 'credentials-changed',
  [ACCOUNT_DISABLED]: 'inactive',
  [ACCOUNT_PURGED]: 'account-purged',
};

const rejected = (err: Extract<SetOutcome, { kind: 'rejected' }>['err'], description: string): SetOutcome => ({ kind: 'rejected', err, description });

/** The kid of a compact JWS's header, or undefined; throws on a header that is not JSON. */
function headerKid(token: string): string | undefined {
  const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as unknown;
  if (!isObject(header)) throw new TypeError('header is not an object');
  return typeof header.kid === 'string' ? header.kid : undefined;
}

/** RFC 9493 §3.2.4: the `id` of an opaque Subject Identifier, or undefined. */
function opaqueId(subject: unknown): string | undefined {
  return isObject(subject) && subject.format === 'opaque' && typeof subject.id === 'string' && subject.id !== '' ? subject.id : undefined;
}

/** Verifies and applies the SET delivered under `jti` (see the module). */
export async function receiveSet(jti: string, set: unknown, options: ReceiveOptions): Promise<SetOutcome> {
  if (typeof set !== 'string' || set.split('.').length !== 3 || set.length > 16 * 1024) return rejected('invalid_request', 'not a compact JWS');
  let kid: string | undefined;
  try {
    kid = headerKid(set);
  } catch {
    return rejected('invalid_request', 'malformed JOSE header');
  }
  let verify = options.keys.get(kid);
  if (!verify) {
    // A key rotated in since the last fetch: fetch the set again, at most once per interval.
    let refetched: boolean;
    try {
      refetched = await options.keys.refetch();
    } catch (cause) {
      return { kind: 'retry', cause };
    }
    verify = options.keys.get(kid);
    if (!verify) {
      return refetched ? rejected('invalid_key', `no key ${JSON.stringify(kid ?? null)} in the transmitter's JWKS`) : { kind: 'retry', cause: new Error(`unknown SET key ${JSON.stringify(kid ?? null)}; the JWKS was fetched too recently to fetch it again`) };
    }
  }
  let claims: Record<string, unknown>;
  try {
    claims = verify(set);
  } catch (error) {
    const reason = error instanceof InvalidTokenError ? error.reason : 'malformed';
    return reason === 'signature' ? rejected('invalid_key', 'the signature does not verify') : rejected('invalid_request', `not a valid SET (${reason})`);
  }
  const { iss, aud, iat, events } = claims;
  if (iss !== options.issuer) return rejected('invalid_issuer', `iss is not ${options.issuer}`);
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.includes(options.clientId)) return rejected('invalid_audience', `aud does not name ${options.clientId}`);
  if (claims.jti !== jti) return rejected('invalid_request', 'jti differs from the key the SET was delivered under');
  if (typeof iat !== 'number' || !Number.isFinite(iat) || !isObject(events) || Object.keys(events).length === 0) return rejected('invalid_request', 'iat or events missing');

  const now = options.clock();
  for (const [type, payload] of Object.entries(events)) {
    if (!isObject(payload)) return rejected('invalid_request', `the ${type} event is not an object`);
    // CAEP §2: when the event happened; never later than the SET that tells of it.
    const stamp = payload.event_timestamp;
    const eventTime = typeof stamp === 'number' && Number.isFinite(stamp) ? Math.min(stamp, iat) : iat;
    // OpenID SSF 1.0: the subject is the SET's `sub_id`; earlier drafts put it in the event.
    const subject = opaqueId(claims.sub_id) ?? opaqueId(payload.subject);
    if (type === KEY_REVOKED) {
      const revoked = typeof payload.kid === 'string' && payload.kid !== '' ? payload.kid : subject;
      if (revoked === undefined) return rejected('invalid_request', 'key-revoked names no kid');
      options.ended.revokeKey(revoked, eventTime, now);
      options.onKeyRevoked(revoked);
      continue;
    }
    const end = SUBJECT_ENDS[type];
    if (type !== SESSION_REVOKED && end === undefined) continue; // not an event this receiver acts on
    if (subject === undefined) return rejected('invalid_request', `${type} has no opaque sub_id`);
    if (end === undefined) options.ended.endSession(subject, eventTime, now);
    else options.ended.endSubject(subject, eventTime, end, now);
  }
  return { kind: 'applied' };
}
