/**
 * Accounts people manage themselves (SPEC §10), the face `service.accounts`: registration,
 * email verification and password reset. Everything here is off until configured —
 * registration by `registration: true`, verification and reset by `mail` — so the seed flow
 * of SPEC §2 is unchanged. Mail is only ever written to the store's outbox (with the change it
 * reports); delivering it is the sender's job (`src/mail-sender.ts` in the server).
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, accounts: { registration: true, mail: { publicUrl: 'https://auth.example.com' } } });
 * await service.accounts.register({ username: 'jane', password: 'correct horse battery', email: 'jane@example.com' }, { actor: 'jane', address: '203.0.113.7' });
 */
import type { AccountFlowDeps, MailSettings } from './account-flows.ts';
import { createAddressRateLimit } from './address-rate-limit.ts';
import { commonPasswords } from './common-passwords.ts';
import { DEFAULTS, wholeNumber, type WholeNumberSetting } from './defaults.ts';
import { verifyEmail } from './email-verification.ts';
import { ConfigError, NotFoundError } from './errors.ts';
import type { EventContext } from './events.ts';
import { createMemoryLoginCounter, type LoginCounter } from './login-limiter.ts';
import { mailSealKey } from './mail-seal.ts';
import { requestPasswordReset, resetPassword, type PasswordReset, type PasswordResetRequest } from './password-reset.ts';
import { registerAccount, type NewRegistration } from './registration.ts';
import type { UserRecord } from './store.ts';

/**
 * Defaults and bounds of the per-address limits (SPEC §10), shared by `loadConfig` and `createAuthService`.
 *
 * @example
 * createAuthService({ store, secretKey, accounts: { registration: true, addressMaxRegistrations: ACCOUNT_LIMITS.addressMaxRegistrations.default } });
 */
export const ACCOUNT_LIMITS = Object.freeze({
  /** Registrations per address in the window before 429. */
  addressMaxRegistrations: Object.freeze({ env: 'PORTCULLIS_ADDRESS_MAX_REGISTRATIONS', default: 10, min: 1, max: Number.MAX_SAFE_INTEGER }) satisfies WholeNumberSetting,
  /** Password-reset requests per address in the window before 429. */
  addressMaxResetRequests: Object.freeze({ env: 'PORTCULLIS_ADDRESS_MAX_RESET_REQUESTS', default: 5, min: 1, max: Number.MAX_SAFE_INTEGER }) satisfies WholeNumberSetting,
});

/**
 * The `accounts` option of `createAuthService` (SPEC §10); every part is off by default.
 *
 * @example
 * const accounts: AccountOptions = { registration: true, mail: { publicUrl: 'https://auth.example.com' }, requireVerifiedEmail: true };
 */
export interface AccountOptions {
  /** Anyone may create an account (`POST /register`). Default false. */
  registration?: boolean | undefined;
  /**
   * Mail is configured: new and changed addresses get a verification link, and passwords can
   * be reset by mail. Links start at `publicUrl` (absolute http(s) URL, the service's public
   * address — never a request's Host header). Default: off.
   */
  mail?: { publicUrl: string } | undefined;
  /** The password grant refuses accounts whose address is not confirmed ("Email not verified"). Needs `mail`. Default false. */
  requireVerifiedEmail?: boolean | undefined;
  /** Registrations per client address in the window (default 10). */
  addressMaxRegistrations?: number | undefined;
  /** Password-reset requests per client address in the window (default 5). */
  addressMaxResetRequests?: number | undefined;
  /** The sliding window of both limits, in seconds (default 900, the login limiter's). */
  windowSeconds?: number | undefined;
  /**
   * Where the limits count requests: default the store's `loginCounter` (shared by every
   * instance on the database), else this process's memory. Its window must not be shorter
   * than the other users of the counter's (the database counter sweeps by the caller's window).
   */
  counter?: LoginCounter | undefined;
}

/**
 * Self-service accounts (SPEC §10), as `service.accounts`: what is on, and the four operations.
 *
 * @example
 * if (service.accounts.mailEnabled) await service.accounts.requestPasswordReset({ email: 'jane@example.com' }, { actor: 'system', address: request.ip });
 */
export interface Accounts {
  /** `POST /register` is open. */
  readonly registrationOpen: boolean;
  /** Mail is configured: verification and password reset are on. */
  readonly mailEnabled: boolean;
  /** The password grant refuses unconfirmed addresses. */
  readonly requireVerifiedEmail: boolean;
  /** Creates an account holding `me`; RateLimitedError (429), ValidationError (422), ConflictError (409); NotFoundError when registration is closed. */
  register(input: NewRegistration, context: EventContext & { address: string }): Promise<UserRecord>;
  /** Confirms an address with its verification token; InvalidOneTimeTokenError (400). NotFoundError when mail is off. */
  verifyEmail(token: string, context?: EventContext): Promise<void>;
  /** Mails a reset link if the account exists (same answer and work either way); RateLimitedError (429). NotFoundError when mail is off. */
  requestPasswordReset(input: PasswordResetRequest, context: EventContext & { address: string }): Promise<void>;
  /** Sets a new password with a reset token and ends every session of the user; InvalidOneTimeTokenError (400), ValidationError (422). */
  resetPassword(input: PasswordReset, context: EventContext & { address: string }): Promise<void>;
}

/** Validates the options once, at build time (a mistake is a ConfigError naming it). */
function mailSettings(options: AccountOptions, secretKey: string): MailSettings | undefined {
  if (!options.mail) return undefined;
  const raw = options.mail.publicUrl;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigError('accounts.mail.publicUrl', `must be an absolute http(s) URL without query, fragment or credentials, got ${JSON.stringify(raw)}`);
  }
  return { publicUrl: url.toString(), sealKey: mailSealKey(secretKey) };
}

/** The parts `createAuthService` builds `service.accounts` from. */
export interface AccountParts extends Omit<AccountFlowDeps, 'mail' | 'registrationLimit' | 'resetRequestLimit'> {
  secretKey: string;
}

/**
 * Builds `service.accounts` and the flow dependencies the admin paths share (their
 * verification mails). ConfigError for a bad option.
 */
export function createAccounts(parts: AccountParts, options: AccountOptions = {}): { accounts: Accounts; deps: AccountFlowDeps } {
  const mail = mailSettings(options, parts.secretKey);
  if (options.requireVerifiedEmail === true && !mail) throw new ConfigError('accounts.requireVerifiedEmail', 'needs mail (accounts.mail): nobody could verify an address');
  const windowSeconds = wholeNumber('accounts.windowSeconds', options.windowSeconds, DEFAULTS.windowSeconds);
  const counter = options.counter ?? parts.store.loginCounter ?? createMemoryLoginCounter();
  const deps: AccountFlowDeps = {
    store: parts.store,
    hasher: parts.hasher,
    clock: parts.clock,
    observer: parts.observer,
    mail,
    registrationLimit: createAddressRateLimit(counter, {
      name: 'register',
      max: wholeNumber('accounts.addressMaxRegistrations', options.addressMaxRegistrations, ACCOUNT_LIMITS.addressMaxRegistrations),
      windowSeconds,
    }),
    resetRequestLimit: createAddressRateLimit(counter, {
      name: 'reset',
      max: wholeNumber('accounts.addressMaxResetRequests', options.addressMaxResetRequests, ACCOUNT_LIMITS.addressMaxResetRequests),
      windowSeconds,
    }),
  };
  const registrationOpen = options.registration === true;
  // Read now, not on the first registration's request (a missing file is a broken install: fail at start-up).
  if (registrationOpen || mail) commonPasswords();
  const needsMail = (): void => {
    if (!mail) throw new NotFoundError();
  };
  const accounts: Accounts = Object.freeze({
    registrationOpen,
    mailEnabled: mail !== undefined,
    requireVerifiedEmail: options.requireVerifiedEmail === true,
    register: async (input: NewRegistration, context: EventContext & { address: string }) => {
      if (!registrationOpen) throw new NotFoundError();
      return registerAccount(deps, input, context);
    },
    verifyEmail: async (token: string, context?: EventContext) => {
      needsMail();
      return verifyEmail(deps, token, context);
    },
    requestPasswordReset: async (input: PasswordResetRequest, context: EventContext & { address: string }) => {
      needsMail();
      return requestPasswordReset(deps, input, context);
    },
    resetPassword: async (input: PasswordReset, context: EventContext & { address: string }) => {
      needsMail();
      return resetPassword(deps, input, context);
    },
  });
  return { accounts, deps };
}
