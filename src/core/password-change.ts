/**
 * The self-service password change (`PUT /users/me/password`, SPEC §2.2): check the current
 * password (a wrong one counts as a failed login, SPEC §4), set the new one, end every other
 * session of the user.
 *
 * @example
 * await changePassword(deps, { user, sessionId: principal.sessionId, currentPassword, newPassword, address });
 */
import { IncorrectPasswordError, NotFoundError, ValidationError } from './errors.ts';
import type { EventContext } from './events.ts';
import { verifyFairly } from './password-grant.ts';
import { passwordProblem } from './password-rules.ts';
import type { SessionDeps } from './sessions.ts';
import type { UserRecord } from './store.ts';
import { usernameKey } from './username.ts';
import { updateUserAccount } from './users.ts';

/**
 * A self-service password change (`PUT /users/me/password`).
 *
 * @example
 * await service.changePassword({ user: request.user, sessionId: request.principal.sessionId, currentPassword, newPassword, address: request.ip });
 */
export interface PasswordChange {
  user: UserRecord;
  /** The caller's session: kept, while every other session of the user ends. */
  sessionId: string;
  currentPassword: string;
  newPassword: string;
  /** Client address, for the failed-login limiter. */
  address: string;
}

/**
 * Changes the caller's own password after checking the current one, then ends every other
 * session of the user (SPEC §2.2). A wrong current password counts as a failed login for the
 * limiter (SPEC §4), so a stolen access token cannot be used to guess the password at speed.
 */
export async function changePassword(deps: SessionDeps, input: PasswordChange, context?: EventContext): Promise<void> {
  const { store, limiter, clock } = deps;
  const problem = passwordProblem(input.newPassword);
  if (problem) throw new ValidationError([{ loc: ['body', 'new_password'], msg: problem, type: 'value_error' }]);
  const key = usernameKey(input.user.username);
  await limiter.check(key, input.address, clock());
  // Re-read: the hash must be the stored one, not a cached copy.
  const user = await store.findUserById(input.user.id);
  if (!user) throw new NotFoundError('User not found');
  const { ok, refused } = await verifyFairly(deps, user.passwordHash, input.currentPassword, input.address);
  if (!ok) {
    await limiter.recordFailure(key, input.address, clock());
    const error = new IncorrectPasswordError();
    if (refused) throw error.warn('stored password hash refused; the user must be given a new password', { username: user.username, reason: refused });
    throw error;
  }
  await limiter.recordSuccess(key, input.address, clock());
  // Self-service: the user is the actor, and the event is `password.changed` (SPEC §9.2).
  const self = { address: input.address, ...context, actor: user.username };
  await updateUserAccount(deps, user.id, { password: input.newPassword }, input.sessionId, self, 'password.changed');
}
