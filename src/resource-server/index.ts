/**
 * `portcullis/resource-server`: for services that are not Portcullis. They verify Portcullis
 * access tokens locally and learn of every ended session, user and key from the security
 * event feed within a second (SPEC §8), with adapters for Fastify and Express. It loads
 * nothing of Portcullis's server, database or core.
 */
export { bearerToken } from './bearer.ts';
export {
  createRemoteVerifier,
  type RemoteVerifier,
  type RemoteVerifierOptions,
  type RemoteVerifierStatus,
  type TokenClaims,
} from './remote-verifier.ts';
export {
  InactiveUserError,
  InsufficientScopeError,
  InvalidTokenError,
  NotAuthenticatedError,
  ResourceServerError,
  VerifierUnavailableError,
  type InvalidTokenReason,
  type ResourceServerErrorCode,
} from './errors.ts';
export {
  ACCOUNT_DISABLED,
  ACCOUNT_PURGED,
  CREDENTIAL_CHANGE,
  KEY_REVOKED,
  POLL_DELIVERY_METHOD,
  SECURITY_EVENT_TYPES,
  SESSION_REVOKED,
  SET_TYPE,
  SSF_CONFIGURATION_PATH,
  type EventPayload,
  type OpaqueSubject,
  type SecurityEventClaims,
  type SecurityEventPayloads,
  type SecurityEventType,
  type SsfConfiguration,
} from './event-types.ts';
export { fastifyRequireToken, remoteAuth, type RemoteAuthOptions } from './fastify.ts';
export { expressRequireToken, type ExpressLikeRequest, type ExpressLikeResponse } from './express.ts';
