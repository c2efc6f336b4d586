/**
 * Account management shared by the admin API and the CLI: validation of new and changed
 * users, and the rule that a password change, a disable or a delete ends the user's sessions
 * (SPEC §2.2).
 *
 * @example
 * const user = await createUserAccount(deps, { username: 'johndoe', password: 'secret12' });
 */
import type { Clock } from './clock.ts';
import { NotFoundError, ValidationError, type ValidationIssue } from './errors.ts';
import { eventFrom, type EventContext, type EventType } from './events.ts';
import { parseHash } from './hash-params.ts';
import type { AuthObserver, SessionEndReason } from './observer.ts';
import { passwordProblem } from './password-rules.ts';
import type { PasswordHasher } from './password.ts';
import { DEFAULT_USER_SCOPES, type ScopeCatalog } from './scopes.ts';
import type { LinkedMail, Store, UserPatch, UserRecord } from './store.ts';
import { textProblem } from './text.ts';
import { normalizeUsername, usernameProblem } from './username.ts';

/**
 * The user object of every API response: never the hash or the internal id.
 *
 * @example
 * app.get('/me', { config: { auth: true } }, async (request): Promise<PublicUser> => toPublicUser(request.user));
 */
export interface PublicUser {
  username: string;
  email: string | null;
  full_name: string | null;
  disabled: boolean;
  scopes: string[];
}

/**
 * A stored user as it may be shown to clients: no password hash, no internal id or timestamps.
 *
 * @example
 * app.get('/me', { config: { auth: true } }, async (request) => toPublicUser(request.user));
 */
export function toPublicUser(user: UserRecord): PublicUser {
  return { username: user.username, email: user.email, full_name: user.fullName, disabled: user.disabled, scopes: user.scopes };
}

export interface AccountDeps {
  store: Store;
  hasher: PasswordHasher;
  scopes: ScopeCatalog;
  clock: Clock;
  /** Told about the sessions a change ends. */
  observer?: AuthObserver;
  /** The verification link of a new or changed address (SPEC §10); undefined, or answering undefined, when mail is off. */
  verification?: (account: { username: string; email: string }) => LinkedMail | undefined;
}

/**
 * A new account for `service.createUser`: the password in clear (it is hashed there), optional profile fields and scopes from the catalog.
 *
 * @example
 * await service.createUser({ username: 'jane', password: 'correct horse battery', email: 'jane@example.com', scopes: ['me'] });
 */
export interface NewAccount {
  username: string;
  /** A plain password (hashed here) … */
  password?: string | undefined;
  /** … or an existing argon2/bcrypt hash, stored as it is (imports). */
  passwordHash?: string | undefined;
  email?: string | null | undefined;
  fullName?: string | null | undefined;
  scopes?: readonly string[] | undefined;
  disabled?: boolean | undefined;
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

function fieldIssues(
  input: { email?: string | null | undefined; fullName?: string | null | undefined; scopes?: readonly string[] | undefined; password?: string | undefined },
  catalog: ScopeCatalog,
  loc: string,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  // SPEC §4: NUL and lone surrogates never reach the database (PostgreSQL refuses NUL).
  for (const [field, value] of [['email', input.email], ['full_name', input.fullName]] as const) {
    const problem = value == null ? undefined : textProblem(value);
    if (problem) issues.push({ loc: [loc, field], msg: `String ${problem}`, type: 'value_error' });
  }
  if (input.email != null && (input.email.length > 320 || !EMAIL.test(input.email))) {
    issues.push({ loc: [loc, 'email'], msg: 'value is not a valid email address', type: 'value_error' });
  }
  if (input.fullName != null && input.fullName.length > 256) {
    issues.push({ loc: [loc, 'full_name'], msg: 'String should have at most 256 characters', type: 'string_too_long' });
  }
  for (const scope of input.scopes ?? []) {
    if (!Object.hasOwn(catalog, scope)) issues.push({ loc: [loc, 'scopes'], msg: `Unknown scope: ${scope}`, type: 'value_error' });
  }
  if (input.password !== undefined) {
    const problem = passwordProblem(input.password);
    if (problem) issues.push({ loc: [loc, 'password'], msg: problem, type: 'value_error' });
  }
  return issues;
}

/** Validates a new account; returns the issues (empty when fine). */
export function accountIssues(input: NewAccount, catalog: ScopeCatalog, loc = 'body'): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const problem = usernameProblem(input.username);
  if (problem) issues.push({ loc: [loc, 'username'], msg: problem, type: 'value_error' });
  if (input.password === undefined && input.passwordHash === undefined) {
    issues.push({ loc: [loc, 'password'], msg: 'Field required', type: 'missing' });
  }
  if (input.passwordHash !== undefined) {
    // SPEC §4: a hash is stored only in a format the hasher checks and with cost parameters
    // within bounds, so no login ever runs an unbounded one.
    const parsed = parseHash(input.passwordHash);
    if (!parsed.ok) issues.push({ loc: [loc, 'password_hash'], msg: parsed.reason, type: 'value_error' });
  }
  issues.push(...fieldIssues(input, catalog, loc));
  return issues;
}

/** Creates a user; throws ValidationError (422) or ConflictError (409). */
export async function createUserAccount(deps: AccountDeps, input: NewAccount, context?: EventContext): Promise<UserRecord> {
  const issues = accountIssues(input, deps.scopes);
  if (issues.length > 0) throw new ValidationError(issues);
  const passwordHash = input.passwordHash ?? (await deps.hasher.hash(input.password as string));
  const now = deps.clock();
  const username = normalizeUsername(input.username);
  const scopes = input.scopes ?? DEFAULT_USER_SCOPES;
  const disabled = input.disabled ?? false;
  // SPEC §9.2: names and flags only, never the password or its hash.
  const event = eventFrom('user.created', now, context, { username, detail: { scopes: [...new Set(scopes)], disabled } });
  // SPEC §10: a new address is unconfirmed, and gets its verification link when mail is on.
  const linked = input.email ? deps.verification?.({ username, email: input.email }) : undefined;
  return deps.store.createUser({ username, email: input.email ?? null, fullName: input.fullName ?? null, disabled, passwordHash, scopes }, now, event, linked);
}

/** The names (never the values) of the fields a change sets, for `user.updated`'s detail. */
function changedFields(changes: AccountChanges): string[] {
  const names: Array<[keyof AccountChanges, string]> = [['email', 'email'], ['fullName', 'full_name'], ['disabled', 'disabled'], ['scopes', 'scopes'], ['password', 'password']];
  return names.filter(([key]) => changes[key] !== undefined).map(([, name]) => name);
}

/**
 * Changes for `service.updateUser`; a new password, disabling or removed scopes end the user's sessions.
 *
 * @example
 * await service.updateUser(user.id, { disabled: true });
 */
export interface AccountChanges {
  email?: string | null | undefined;
  fullName?: string | null | undefined;
  disabled?: boolean | undefined;
  scopes?: readonly string[] | undefined;
  password?: string | undefined;
}

/**
 * Applies changes to a user. A new password or a disable ends the user's sessions (all but
 * `keepSessionId`). Throws ValidationError or NotFoundError.
 */
export async function updateUserAccount(
  deps: AccountDeps,
  userId: string,
  changes: AccountChanges,
  keepSessionId?: string,
  context?: EventContext,
  /** `password.changed` for the self-service change; `user.updated` otherwise. */
  type: EventType = 'user.updated',
): Promise<UserRecord> {
  const issues = fieldIssues(changes, deps.scopes, 'body');
  if (issues.length > 0) throw new ValidationError(issues);
  const patch: UserPatch = {
    email: changes.email,
    fullName: changes.fullName,
    disabled: changes.disabled,
    scopes: changes.scopes ? [...new Set(changes.scopes)] : undefined,
  };
  if (changes.password !== undefined) patch.passwordHash = await deps.hasher.hash(changes.password);
  const now = deps.clock();
  // The event names the user: read once (usernames do not change).
  const current = await deps.store.findUserById(userId);
  const username = current?.username ?? null;
  // SPEC §10: a changed address is no longer confirmed, and gets its own verification link.
  const emailChanged = current !== undefined && changes.email !== undefined && changes.email !== current.email;
  if (emailChanged) patch.emailVerifiedAt = null;
  const linked = emailChanged && changes.email ? deps.verification?.({ username: current.username, email: changes.email }) : undefined;
  const detail = type === 'user.updated' ? { fields: changedFields(changes) } : {};
  const user = await deps.store.updateUser(userId, patch, now, eventFrom(type, now, context, { username, detail }), linked);
  if (!user) throw new NotFoundError('User not found');
  if (changes.password !== undefined || changes.disabled === true) {
    const cause = changes.disabled === true ? 'user_disabled' : 'password_changed';
    const { reason, detail: endedDetail } = endReason(cause, context);
    const ended = await deps.store.revokeUserSessions(userId, now, keepSessionId, eventFrom('session.ended', now, context, { username: user.username, detail: endedDetail }));
    if (ended > 0) deps.observer?.sessionsEnded(reason, ended);
  }
  return user;
}

/**
 * Why an account change ends the user's sessions (SPEC §9.2): `admin` when an admin made it
 * through the admin API (`context.byAdmin`), with the change as `cause`; else the change.
 */
function endReason(cause: 'user_disabled' | 'password_changed' | 'user_deleted', context: EventContext | undefined): { reason: SessionEndReason; detail: Record<string, string> } {
  return context?.byAdmin ? { reason: 'admin', detail: { reason: 'admin', cause } } : { reason: cause, detail: { reason: cause } };
}

/**
 * Deletes a user; false when there is no such user. The user's sessions are ended first, so
 * they are counted (SPEC §9.1) and, should the delete fail, are over all the same (fail closed).
 */
export async function deleteUserAccount(deps: Pick<AccountDeps, 'store' | 'clock' | 'observer'>, userId: string, context?: EventContext): Promise<boolean> {
  const now = deps.clock();
  const username = (await deps.store.findUserById(userId))?.username ?? null;
  const { reason, detail } = endReason('user_deleted', context);
  const ended = await deps.store.revokeUserSessions(userId, now, undefined, eventFrom('session.ended', now, context, { username, detail }));
  const deleted = await deps.store.deleteUser(userId, eventFrom('user.deleted', now, context, { username }));
  if (ended > 0) deps.observer?.sessionsEnded(reason, ended);
  return deleted;
}

/** Finds a user by username or throws NotFoundError. */
export async function requireUser(store: Store, username: string): Promise<UserRecord> {
  const user = await store.findUserByUsername(username);
  if (!user) throw new NotFoundError('User not found');
  return user;
}
