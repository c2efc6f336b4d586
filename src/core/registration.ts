/**
 * Self-registration (SPEC §10, `PORTCULLIS_REGISTRATION=open`): anyone may create an account
 * holding the `me` scope. The username and password rules are §3's, plus the rules for a
 * password a person picks (`password-policy.ts`: not a common password, not the username or
 * email); the email must be one mailbox (`email-address.ts`). Requests are limited per
 * client address. When mail is on, the account, its verification token, the mail carrying
 * it and the `user.created` event are written in one transaction.
 *
 * @example
 * const user = await registerAccount(deps, { username: 'jane', password: 'correct horse battery', email: 'jane@example.com', fullName: 'Jane Doe' }, { actor: 'jane', address: '203.0.113.7' });
 */
import { verificationFor, type AccountFlowDeps } from './account-flows.ts';
import { emailAddressProblem } from './email-address.ts';
import { ValidationError, type ValidationIssue } from './errors.ts';
import { eventFrom, type EventContext } from './events.ts';
import { limiterAddress } from './limiter-address.ts';
import { choosablePasswordIssues } from './password-policy.ts';
import { DEFAULT_USER_SCOPES } from './scopes.ts';
import type { UserRecord } from './store.ts';
import { textProblem } from './text.ts';
import { normalizeUsername, usernameProblem } from './username.ts';

/**
 * The body of `POST /register`.
 *
 * @example
 * await service.accounts.register({ username: 'jane', password: 'correct horse battery', email: 'jane@example.com', fullName: null }, { actor: 'jane', address: request.ip });
 */
export interface NewRegistration {
  username: string;
  password: string;
  email: string;
  fullName?: string | null | undefined;
}

/** Every problem of a registration, as 422 issues (FastAPI's shape), or []. */
export function registrationIssues(input: NewRegistration): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const usernameIssue = usernameProblem(input.username);
  if (usernameIssue) issues.push({ loc: ['body', 'username'], msg: usernameIssue, type: 'value_error' });
  const emailIssue = textProblem(input.email) ? `String ${textProblem(input.email)}` : emailAddressProblem(input.email);
  if (emailIssue) issues.push({ loc: ['body', 'email'], msg: emailIssue, type: 'value_error' });
  if (input.fullName != null) {
    const text = textProblem(input.fullName);
    if (text) issues.push({ loc: ['body', 'full_name'], msg: `String ${text}`, type: 'value_error' });
    else if (input.fullName.length > 256) issues.push({ loc: ['body', 'full_name'], msg: 'String should have at most 256 characters', type: 'string_too_long' });
  }
  issues.push(...choosablePasswordIssues(input.password, { username: usernameIssue ? input.username : normalizeUsername(input.username), email: input.email }, ['body', 'password']));
  return issues;
}

/**
 * Creates an account for whoever asks: counted against the address's limit (RateLimitedError,
 * 429), then validated (ValidationError, 422, nothing stored), hashed within the address's
 * fair share of the hashing slots, and stored (ConflictError, 409, for a taken username).
 */
export async function registerAccount(deps: AccountFlowDeps, input: NewRegistration, context: EventContext & { address: string }): Promise<UserRecord> {
  const { store, clock } = deps;
  // Counted first: a script sending bad bodies is limited as well as one creating accounts.
  await deps.registrationLimit.take(context.address, clock());
  const issues = registrationIssues(input);
  if (issues.length > 0) throw new ValidationError(issues);
  const username = normalizeUsername(input.username);
  const passwordHash = await deps.hasher.hash(input.password, limiterAddress(context.address));
  const now = clock();
  const scopes = [...DEFAULT_USER_SCOPES];
  // SPEC §9.2: the registrant is the actor; names and flags only.
  const event = eventFrom('user.created', now, { ...context, actor: username }, { username, detail: { scopes, disabled: false, source: 'registration' } });
  return store.createUser(
    { username, email: input.email, fullName: input.fullName ?? null, disabled: false, passwordHash, scopes, emailVerifiedAt: null },
    now,
    event,
    verificationFor(deps, { username, email: input.email }),
  );
}
