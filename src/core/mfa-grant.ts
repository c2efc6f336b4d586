/**
 * Logging in with TOTP on (SPEC §10). The password grant, for a user with TOTP on and the
 * right password, goes on only with the code: a first-party app may send it with the password
 * (`otp` or `recovery_code`); otherwise the answer is 403 `mfa_required` with an `mfa_token`
 * (256 random bits, stored hashed, 5 minutes, single use), and the code step is its own grant:
 * `grant_type=urn:portcullis:params:oauth:grant-type:mfa-otp` with `mfa_token` and `otp` (or
 * `recovery_code`) issues the tokens, the same response as the password grant. The URN follows
 * RFC 6749 §4.5 (extension grants are absolute URIs) in Portcullis's own namespace.
 *
 * Wrong codes count for the lockout of §4 like wrong passwords (per username and address, and
 * per address), the lockout refuses the code step as it refuses the password step (429), and
 * only the whole login's success resets the count.
 *
 * @example
 * // after a 403 mfa_required:
 * const tokens = await service.mfaGrant({ mfaToken, otp: '123456', client });
 */
import { createHash, randomBytes } from 'node:crypto';
import { systemClock, type Clock } from './clock.ts';
import { InactiveUserError, InvalidGrantError, InvalidRequestError, MfaRequiredError } from './errors.ts';
import { eventFrom, eventText } from './events.ts';
import type { PruneStep } from './housekeeping.ts';
import { loginOutcomeOf, type AuthObserver, type LoginOutcome } from './observer.ts';
import { startSession, type ClientContext, type GrantDeps, type TokenResponse } from './password-grant.ts';
import { grantScopes } from './scopes.ts';
import { acceptSecondFactor, isFirstPartyClient, parseSecondFactor, type SecondFactor } from './second-factor.ts';
import { sessionIdOf } from './session-token.ts';
import type { Store, UserRecord } from './store.ts';
import { usernameKey } from './username.ts';

/**
 * The `grant_type` of the code step (SPEC §10).
 *
 * @example
 * await fetch('/token', { method: 'POST', body: new URLSearchParams({ grant_type: MFA_OTP_GRANT_TYPE, mfa_token, otp }) });
 */
export const MFA_OTP_GRANT_TYPE = 'urn:portcullis:params:oauth:grant-type:mfa-otp';

/** How long an mfa token lives: 5 minutes (SPEC §10). */
export const MFA_TOKEN_TTL_MS = 5 * 60_000;
/** Live mfa tokens kept per user; a newer one ends the oldest beyond it. */
export const MAX_MFA_TOKENS_PER_USER = 10;
/** Ours are 43 characters; anything much longer is refused before it is hashed. */
const MAX_MFA_TOKEN_LENGTH = 512;

const INVALID_MFA_TOKEN = 'Invalid or expired mfa_token';

/** What the store keeps of an mfa token. */
export function hashMfaToken(token: string): string {
  return createHash('sha256').update(`portcullis/mfa-token\0${token}`).digest('base64url');
}

/**
 * What the second-factor steps need from the assembled core: the grant's parts, the secret
 * key (TOTP secrets are sealed with it) and the observer (metrics).
 */
export interface MfaGrantDeps extends GrantDeps {
  secretKey: string;
  observer: AuthObserver;
}

/**
 * The code step's input: the mfa token of a 403 `mfa_required`, and `otp` or `recovery_code`.
 *
 * @example
 * const input: MfaGrantInput = { mfaToken: body.mfa_token, otp: '123456', client };
 */
export interface MfaGrantInput {
  mfaToken: string;
  otp?: string | undefined;
  recoveryCode?: string | undefined;
  client: ClientContext;
}

/**
 * The password grant's second factor (`GrantDeps.secondFactor`): nothing for a user without
 * a confirmed TOTP (they log in exactly as before); with one, the code sent with the password
 * by a first-party client, or else an mfa token in a 403 `mfa_required`.
 *
 * @example
 * const grantDeps = { ...deps, secondFactor: (user, requested, factor, client) => requireSecondFactor(mfaDeps, user, requested, factor, client) };
 */
export async function requireSecondFactor(deps: MfaGrantDeps, user: UserRecord, requested: string[], factor: SecondFactor | undefined, client: ClientContext): Promise<void> {
  const totp = await deps.store.findTotp(user.id);
  if (totp === undefined || totp.confirmedAt === null) return;
  // SPEC §10: only a first-party client may send the code with the password (the registry's
  // `first_party`; no registered client is the seed flow's own). RFC 6749 §3.2: for a client
  // that may not send it, the code is ignored.
  if (factor !== undefined && isFirstPartyClient(client.registered ?? undefined)) {
    await acceptSecondFactor(deps, user, totp, factor, client.address);
    return;
  }
  const now = deps.clock();
  const mfaToken = randomBytes(32).toString('base64url');
  await deps.store.createMfaToken(
    { tokenHash: hashMfaToken(mfaToken), userId: user.id, scopes: requested, clientId: client.clientId, createdAt: now, expiresAt: now + MFA_TOKEN_TTL_MS },
    MAX_MFA_TOKENS_PER_USER,
  );
  throw new MfaRequiredError(mfaToken);
}

/** The code step, unobserved; `seen` learns the user as soon as the token names one (for the event). */
async function redeemMfaToken(deps: MfaGrantDeps, input: MfaGrantInput, seen: { user?: UserRecord; factor?: SecondFactor }): Promise<TokenResponse> {
  const { store, limiter, clock } = deps;
  const factor = parseSecondFactor(input);
  if (factor === undefined) throw new InvalidRequestError('Missing required parameter: otp (or recovery_code)');
  seen.factor = factor;
  if (input.mfaToken.length > MAX_MFA_TOKEN_LENGTH) throw new InvalidGrantError(INVALID_MFA_TOKEN);
  const tokenHash = hashMfaToken(input.mfaToken);
  const pending = await store.findMfaToken(tokenHash, clock());
  // RFC 6749 §4.1.3's rule for codes, applied to this token: redeemed by the client it was issued to.
  if (pending === undefined || pending.clientId !== input.client.clientId) throw new InvalidGrantError(INVALID_MFA_TOKEN);
  const user = await store.findUserById(pending.userId);
  if (user === undefined) throw new InvalidGrantError(INVALID_MFA_TOKEN);
  seen.user = user;

  const key = usernameKey(user.username);
  await limiter.check(key, input.client.address, clock());
  if (user.disabled) throw new InactiveUserError();
  const totp = await store.findTotp(user.id);
  // Turned off meanwhile (which also deletes the user's mfa tokens).
  if (totp === undefined || totp.confirmedAt === null) throw new InvalidGrantError(INVALID_MFA_TOKEN);
  await acceptSecondFactor(deps, user, totp, factor, input.client.address);
  // Single use: of racing requests with one token, one consumes it.
  if (!(await store.consumeMfaToken(tokenHash, clock()))) throw new InvalidGrantError(INVALID_MFA_TOKEN);
  const granted = grantScopes(pending.scopes, user.scopes, deps.scopes);
  await limiter.recordSuccess(key, input.client.address, clock());
  return startSession(deps, user.id, granted, input.client, user.username, { audience: null, clientId: input.client.registered?.clientId });
}

/**
 * The mfa-otp grant (SPEC §10): the mfa token of a 403 `mfa_required` and a code give the
 * tokens (with a refresh token, as the password grant). An unknown, expired, used or other
 * client's mfa token is `invalid_grant`; a wrong code too, counted as a failed login (§4).
 * Counted in the login metrics (SPEC §9.1) and the audit events (§9.2) as a login attempt,
 * with the factor used (`totp` or `recovery_code`) in the event's detail.
 *
 * @example
 * const tokens = await mfaOtpGrant(deps, { mfaToken, recoveryCode: 'abcd-efgh-ijkm-nopq', client });
 */
export async function mfaOtpGrant(deps: MfaGrantDeps, input: MfaGrantInput): Promise<TokenResponse> {
  const seen: { user?: UserRecord; factor?: SecondFactor } = {};
  const record = async (outcome: LoginOutcome, sessionId: string | null = null): Promise<void> => {
    deps.observer.loginAttempt(outcome);
    const username = seen.user?.username ?? null;
    const context = { actor: eventText(username) ?? 'system', address: input.client.address, userAgent: input.client.userAgent, clientId: input.client.clientId };
    const factor = seen.factor === undefined ? {} : { factor: seen.factor.kind === 'otp' ? 'totp' : 'recovery_code' };
    const event =
      outcome === 'success'
        ? eventFrom('login.succeeded', deps.clock(), context, { username, sessionId, detail: factor })
        : eventFrom(outcome === 'locked' ? 'login.locked' : 'login.failed', deps.clock(), context, { username, detail: outcome === 'locked' ? factor : { reason: outcome, ...factor } });
    try {
      await deps.store.appendEvents([event]);
    } catch {
      // The database is away: the attempt's answer stands.
    }
  };
  let body: TokenResponse;
  try {
    body = await redeemMfaToken(deps, input, seen);
  } catch (error) {
    const outcome = loginOutcomeOf(error);
    if (outcome) await record(outcome);
    throw error;
  }
  deps.observer.tokensIssued('mfa_otp');
  await record('success', sessionIdOf(body.access_token));
  return body;
}

/**
 * The prune step for mfa tokens (SPEC §9.4 housekeeping): tokens expired by now go (each
 * user's are also dropped at their next password step).
 *
 * @example
 * await runPrune([mfaTokenPruneStep(store)]);
 */
export function mfaTokenPruneStep(store: Store, options: { clock?: Clock } = {}): PruneStep {
  const clock = options.clock ?? systemClock;
  return { name: 'mfa_tokens', run: (limit) => store.pruneExpiredMfaTokens(clock(), limit) };
}
