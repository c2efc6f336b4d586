/**
 * `portcullis/core`: the framework-free core, as an app embedding Portcullis and a store
 * implementer need it — the service, its options and the caller it authenticates, the
 * client registry's types, the errors, the scope catalog, the storage and limiter protocols, the TOTP second factor's
 * grant type and types, and the signing-key ring. Everything else in src/core/ is internal.
 */
export { createAuthService, DEFAULT_ARGON2, type AuthService, type AuthServiceOptions, type HashingStats } from './auth-service.ts';
export type { TokenClient } from './audience.ts';
export type { AccountOptions, Accounts } from './accounts.ts';
export type { PasswordReset, PasswordResetRequest } from './password-reset.ts';
export type { NewRegistration } from './registration.ts';
export type { Principal } from './authenticate.ts';
export type { Caller, CallerKind, ServicePrincipal } from './authenticate.ts';
export type { ClientAuthRequest, ClientCredentials, ClientsMode } from './client-auth.ts';
export type { ServiceTokenResponse } from './client-credentials-grant.ts';
export type { ClientOperations } from './client-service.ts';
export {
  CLIENT_GRANTS,
  toPublicClient,
  type ClientChanges,
  type ClientGrant,
  type ClientType,
  type ClientWithSecret,
  type NewClientInput,
  type PublicClient,
  type RegisteredClient,
} from './clients.ts';
export type { IntrospectionResponse } from './introspection.ts';
export { createManualClock, systemClock, type Clock, type ManualClock } from './clock.ts';
export {
  AccessDeniedError,
  ConfigError,
  ConflictError,
  IncorrectCodeError,
  EmailNotVerifiedError,
  IncorrectPasswordError,
  InactiveUserError,
  InsufficientScopeError,
  InvalidClientError,
  InvalidGrantError,
  InvalidOneTimeTokenError,
  InvalidRequestError,
  InvalidScopeError,
  InvalidTargetError,
  InvalidTokenError,
  LoginOverloadedError,
  MfaRequiredError,
  NotAuthenticatedError,
  NotFoundError,
  PortcullisError,
  RateLimitedError,
  SelfLockoutError,
  StoreUnavailableError,
  TooManyAttemptsError,
  TooManyRequestsError,
  UnauthorizedClientError,
  UnsupportedGrantTypeError,
  ValidationError,
  type ErrorCode,
  type ValidationIssue,
} from './errors.ts';
export { openKeyRing, type KeyRing, type KeyRingOptions } from './key-ring.ts';
export { createLoginLimiter, createMemoryLoginCounter, unlimitedLoginLimiter, type LoginCounter, type LoginLimiter, type LoginLimits } from './login-limiter.ts';
export type { Argon2Params } from './password.ts';
export {
  EVENT_TYPES,
  type EventContext,
  type EventPage,
  type EventPageRequest,
  type EventPosition,
  type EventQuery,
  type EventType,
  type NewAuditEvent,
  type PublicEvent,
  type StoredEvent,
} from './events.ts';
export type { PasswordChange } from './password-change.ts';
export type { ClientContext, PasswordGrantInput, TokenResponse } from './password-grant.ts';
export { MFA_OTP_GRANT_TYPE, type MfaGrantInput } from './mfa-grant.ts';
export type { MfaStore, MfaTokenRecord, TotpRecord } from './mfa-store.ts';
export type { TotpEnrollment, TotpStatus } from './totp-enrollment.ts';
export { DEFAULT_SCOPES, DEFAULT_USER_SCOPES, type ScopeCatalog } from './scopes.ts';
export type { SessionView } from './sessions.ts';
export type { SigningKeyRecord, SigningKeyStore } from './signing-keys.ts';
export type {
  AuthState,
  ClientPatch,
  ClientRecord,
  ClientStore,
  NewClient,
  EventStore,
  LinkedMail,
  MailOutboxStore,
  NewMail,
  NewOneTimeToken,
  OneTimeTokenPurpose,
  OneTimeTokenRecord,
  OneTimeTokenStore,
  OutboxMail,
  NewRefreshToken,
  NewSession,
  NewUser,
  RefreshTokenRecord,
  RefreshTokenState,
  SessionRecord,
  SessionStore,
  Store,
  StoreChange,
  UserPatch,
  UserRecord,
  UserStore,
} from './store.ts';
export { toPublicUser, type AccountChanges, type NewAccount, type PublicUser } from './users.ts';
