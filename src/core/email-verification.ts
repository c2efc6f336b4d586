/**
 * Email verification (SPEC §10): `POST /verify-email {"token"}` uses the single-use token of
 * a verification mail and marks the account's address confirmed — only if the address is
 * still the one the mail went to. A used, voided, expired or unknown token, or one of
 * another shape, gets the one answer 400 "Invalid or expired token".
 *
 * @example
 * await verifyEmail(deps, token, { actor: 'system', address: request.ip });
 */
import type { AccountFlowDeps } from './account-flows.ts';
import { InvalidOneTimeTokenError } from './errors.ts';
import { eventFrom, type EventContext } from './events.ts';
import { hashOneTimeToken, looksLikeOneTimeToken } from './one-time-token.ts';

/** Confirms the address a verification token was sent to; InvalidOneTimeTokenError (400) otherwise. */
export async function verifyEmail(deps: Pick<AccountFlowDeps, 'store' | 'clock'>, token: string, context?: EventContext): Promise<void> {
  if (!looksLikeOneTimeToken(token)) throw new InvalidOneTimeTokenError();
  const tokenHash = hashOneTimeToken(token);
  const now = deps.clock();
  // Read first for the event's username (names never change); the write below re-checks
  // that the token is live, so a race between two uses still lets only one through.
  const found = await deps.store.findOneTimeToken('verify_email', tokenHash, now);
  if (!found) throw new InvalidOneTimeTokenError();
  const { user } = found;
  // SPEC §9.2: the owner of the address is the actor; the field changed, not its value.
  const event = eventFrom('user.updated', now, { ...context, actor: user.username }, { username: user.username, detail: { fields: ['email_verified'] } });
  if (!(await deps.store.confirmEmailWithToken(tokenHash, now, event))) throw new InvalidOneTimeTokenError();
}
