/**
 * The body of an RFC 8936 poll request (`POST /events/poll`, SPEC §8), read strictly: a JSON
 * object whose members, when present, have the types of RFC 8936 §2.4 — `ack` (an array of
 * jti strings), `setErrs` (an object of jti → `{err, description}`), `maxEvents` (a whole
 * number) and `returnImmediately` (a boolean). Members RFC 8936 does not define are ignored
 * (a later version may add some). Anything else is `InvalidRequestError` (400) naming the
 * member, before anything is acknowledged: a bad request changes nothing.
 *
 * @example
 * const poll = parsePollRequest(request.body); // { ack: ['…'], setErrs: {}, maxEvents: 100, returnImmediately: false }
 */
import { InvalidRequestError } from './errors.ts';

/** A validated poll request. */
export interface PollRequest {
  /** jtis the receiver acknowledges (RFC 8936 §2.4.1). */
  ack: string[];
  /** jtis the receiver could not accept, with why (RFC 8936 §2.4.2, error codes of RFC 8935 §2.3). */
  setErrs: Record<string, { err: string; description: string }>;
  /** The most SETs to return; 0 only acknowledges. */
  maxEvents: number;
  /** false: hold the request until a SET arrives (long poll, RFC 8936 §2.4's default). */
  returnImmediately: boolean;
}

/** `maxEvents` when the request does not say (RFC 8936 §2.4 leaves it to the transmitter). */
export const DEFAULT_MAX_EVENTS = 100;
/** The largest `maxEvents` taken. */
export const MAX_EVENTS = 1000;
/** At most this many jtis acknowledged and reported together in one request. */
export const MAX_ACKS = 1000;
const MAX_JTI_LENGTH = 256;
const MAX_ERR_LENGTH = 64;
const MAX_DESCRIPTION_LENGTH = 2048;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const bad = (message: string): InvalidRequestError => new InvalidRequestError(message);
const jtiProblem = (jti: unknown): boolean => typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH;

/** Reads a poll request body (`undefined`: no body, all defaults); InvalidRequestError when it is not one. */
export function parsePollRequest(body: unknown): PollRequest {
  if (body === undefined || body === null) body = {};
  if (!isObject(body)) throw bad('The poll request must be a JSON object (RFC 8936 §2.4)');
  const { ack = [], setErrs = {}, maxEvents = DEFAULT_MAX_EVENTS, returnImmediately = false } = body;
  if (!Array.isArray(ack)) throw bad('ack must be an array of jti strings');
  if (ack.some(jtiProblem)) throw bad(`ack must hold jti strings of 1–${MAX_JTI_LENGTH} characters`);
  if (!isObject(setErrs)) throw bad('setErrs must be an object of jti → {"err", "description"}');
  const errors: PollRequest['setErrs'] = {};
  for (const [jti, value] of Object.entries(setErrs)) {
    if (jtiProblem(jti)) throw bad(`setErrs keys must be jti strings of 1–${MAX_JTI_LENGTH} characters`);
    if (!isObject(value) || typeof value.err !== 'string' || value.err === '' || value.err.length > MAX_ERR_LENGTH) {
      throw bad(`setErrs values must be objects with "err", a string of 1–${MAX_ERR_LENGTH} characters (RFC 8936 §2.4.2)`);
    }
    if (value.description !== undefined && (typeof value.description !== 'string' || value.description.length > MAX_DESCRIPTION_LENGTH)) {
      throw bad(`setErrs "description" must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`);
    }
    errors[jti] = { err: value.err, description: typeof value.description === 'string' ? value.description : '' };
  }
  if (ack.length + Object.keys(errors).length > MAX_ACKS) throw bad(`At most ${MAX_ACKS} jtis in ack and setErrs together; acknowledge in several polls`);
  if (typeof maxEvents !== 'number' || !Number.isInteger(maxEvents) || maxEvents < 0 || maxEvents > MAX_EVENTS) throw bad(`maxEvents must be a whole number from 0 to ${MAX_EVENTS}`);
  if (typeof returnImmediately !== 'boolean') throw bad('returnImmediately must be true or false');
  return { ack: [...new Set(ack as string[])], setErrs: errors, maxEvents, returnImmediately };
}
