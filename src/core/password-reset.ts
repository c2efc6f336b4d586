/**
 * Password reset by mail (SPEC §10; OWASP Forgot Password Cheat Sheet).
 *
 * `requestPasswordReset` answers the same way, after the same work, whether or not the account
 * exists: one lookup, a token generated and hashed, a mail rendered and sealed, and one store
 * write running the same statements (a stand-in token without a user, and no mail, for an
 * unknown, disabled or address-less account). So neither the answer nor the work — and with it
 * the timing — tells who has an account. A newer request voids the user's older tokens.
 *
 * `resetPassword` checks the token before any password hashing (a forged token costs one
 * lookup), holds the new password to the rules of a password a person picks, then sets it,
 * ends every session of the user and records `password.changed` and `session.ended`, in one
 * transaction that also uses up the token.
 *
 * @example
 * await requestPasswordReset(deps, { email: 'jane@example.com' }, { actor: 'system', address: request.ip });
 * await resetPassword(deps, { token, newPassword: 'a new long passphrase' }, { actor: 'system', address: request.ip });
 */
import type { AccountFlowDeps } from './account-flows.ts';
import { InvalidOneTimeTokenError, ValidationError } from './errors.ts';
import { eventFrom, eventText, type EventContext } from './events.ts';
import { limiterAddress } from './limiter-address.ts';
import { sealMail } from './mail-seal.ts';
import { accountLink, passwordResetMail } from './mail-templates.ts';
import { generateOneTimeToken, hashOneTimeToken, looksLikeOneTimeToken, ONE_TIME_TOKEN_TTL_MS } from './one-time-token.ts';
import { choosablePasswordIssues } from './password-policy.ts';
import type { UserRecord } from './store.ts';

/**
 * The body of `POST /password-reset/request`: exactly one of the two.
 *
 * @example
 * await service.accounts.requestPasswordReset({ username: 'jane' }, { actor: 'system', address: request.ip });
 */
export type PasswordResetRequest = { username: string; email?: undefined } | { email: string; username?: undefined };

/**
 * The body of `POST /password-reset`.
 *
 * @example
 * await service.accounts.resetPassword({ token, newPassword: 'a new long passphrase' }, { actor: 'system', address: request.ip });
 */
export interface PasswordReset {
  token: string;
  newPassword: string;
}

/** Where the mail of a request for no mailable account "goes": nowhere (RFC 2606 `.invalid`); it is never queued. */
const NOBODY = 'nobody@portcullis.invalid';

/** Mails a reset link to the account named, if there is one to mail; the same work either way. */
export async function requestPasswordReset(deps: AccountFlowDeps, input: PasswordResetRequest, context: EventContext & { address: string }): Promise<void> {
  const { store, clock } = deps;
  if (!deps.mail) throw new Error('password reset needs mail');
  const bothOrNone = (input.username === undefined) === (input.email === undefined);
  if (bothOrNone) throw new ValidationError([{ loc: ['body'], msg: 'Give exactly one of username and email', type: 'value_error' }]);
  await deps.resetRequestLimit.take(context.address, clock());
  // One lookup either way; names and addresses no account can have find nothing.
  const user = input.username !== undefined ? await store.findUserByUsername(input.username) : await store.findUserByEmail(input.email);
  // A disabled account, or one without an address, gets no mail (as an unknown one).
  const target: (UserRecord & { email: string }) | undefined = user && !user.disabled && user.email !== null ? (user as UserRecord & { email: string }) : undefined;
  const token = generateOneTimeToken();
  const now = clock();
  const mail = passwordResetMail({ to: target?.email ?? NOBODY, username: target?.username ?? '', link: accountLink(deps.mail.publicUrl, 'password-reset', token) });
  // SPEC §9.2; the admin reading it may tell a known account from an unknown one, the requester may not.
  const event = eventFrom('password.reset_requested', now, context, {
    username: target?.username ?? eventText(input.username),
    detail: { by: input.username !== undefined ? 'username' : 'email', mailed: target !== undefined },
  });
  await store.issueOneTimeToken(
    { purpose: 'password_reset', tokenHash: hashOneTimeToken(token), userId: target?.id ?? null, email: target?.email ?? null, expiresAt: now + ONE_TIME_TOKEN_TTL_MS.password_reset },
    now,
    { mail: sealMail(deps.mail.sealKey, mail), event },
  );
}

/** Sets a new password with a reset token and ends every session of the user. */
export async function resetPassword(deps: AccountFlowDeps, input: PasswordReset, context: EventContext & { address: string }): Promise<void> {
  const { store, clock } = deps;
  if (!looksLikeOneTimeToken(input.token)) throw new InvalidOneTimeTokenError();
  const tokenHash = hashOneTimeToken(input.token);
  const found = await store.findOneTimeToken('password_reset', tokenHash, clock());
  if (!found) throw new InvalidOneTimeTokenError();
  const { user } = found;
  const issues = choosablePasswordIssues(input.newPassword, user, ['body', 'new_password']);
  if (issues.length > 0) throw new ValidationError(issues);
  const passwordHash = await deps.hasher.hash(input.newPassword, limiterAddress(context.address));
  const now = clock();
  // The owner of the mailbox acts on their own account.
  const self = { ...context, actor: user.username };
  // `password.changed` is the `credential-change` of the security event feed (SPEC §8): the
  // feed derives its SET from this event, written in the transaction of the change (the
  // store's one place for events, `insertEvents`), so no reset is ever left unannounced.
  const changed = eventFrom('password.changed', now, self, { username: user.username, detail: { reason: 'reset' } });
  const ended = eventFrom('session.ended', now, self, { username: user.username, detail: { reason: 'password_changed' } });
  const result = await store.resetPasswordWithToken(tokenHash, now, passwordHash, { changed, ended });
  // Used in the meantime (a second request with the same link): one of them wins.
  if (!result) throw new InvalidOneTimeTokenError();
  if (result.endedSessions > 0) deps.observer.sessionsEnded('password_changed', result.endedSessions);
}
