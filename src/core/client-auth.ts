/**
 * Client authentication at the token, revocation and introspection endpoints (SPEC §7.2,
 * RFC 6749 §2.3.1): which registered client a request comes from, if any, and whether it may
 * do what it asks. The credentials are extracted by the framework layer (HTTP Basic or the
 * form, never both); this decides on them.
 *
 * - `open` mode (the default): a request naming no client, or a `client_id` that is not
 *   registered, goes on as before, anonymously (as FastAPI's form ignores `client_id`). A
 *   registered `client_id` is always authenticated (a confidential client must send its
 *   secret) and held to its grants.
 * - `registered` mode: every token request must come from a registered client, and the
 *   password grant only from a first-party one (RFC 9700 §2.4: the resource owner password
 *   credentials grant MUST NOT be used, except by clients the operator trusts with passwords).
 * - `client_credentials` and introspection always need an authenticated confidential client.
 *
 * @example
 * const client = await authenticateClient(deps, { credentials, endpoint: 'token', grantType: 'client_credentials' });
 */
import { checkClientSecret } from './client-secret-check.ts';
import { isClientIdShape, toRegisteredClient, type RegisteredClient } from './clients.ts';
import { InvalidClientError, InvalidGrantError, UnauthorizedClientError } from './errors.ts';
import type { ClientRecord } from './store.ts';

/**
 * How strictly `/token` asks for a registered client (`PORTCULLIS_CLIENTS`).
 *
 * @example
 * createAuthService({ store, secretKey, clients: 'registered' });
 */
export type ClientsMode = 'open' | 'registered';

/**
 * Every clients mode.
 *
 * @example
 * CLIENTS_MODES.includes('open') // true
 */
export const CLIENTS_MODES: readonly ClientsMode[] = Object.freeze(['open', 'registered']);

/**
 * The client credentials of one request (RFC 6749 §2.3.1), as the framework layer found them:
 * HTTP Basic (`client_secret_basic`) or form fields (`client_secret_post`), or none.
 *
 * @example
 * const credentials: ClientCredentials = { clientId: 'x3v…', clientSecret: 's3cr…', method: 'client_secret_basic' };
 */
export interface ClientCredentials {
  clientId: string | null;
  clientSecret: string | null;
  method: 'client_secret_basic' | 'client_secret_post' | null;
}

/**
 * What a client is being authenticated for: the endpoint and, at `/token`, the grant.
 *
 * @example
 * await service.authenticateClient({ credentials, endpoint: 'introspect' });
 */
export interface ClientAuthRequest {
  credentials: ClientCredentials;
  /** `events`: the security event feed's poll endpoint (SPEC §8, RFC 8936). */
  endpoint: 'token' | 'revoke' | 'introspect' | 'events';
  /** The `grant_type` of a token request (one Portcullis supports). */
  grantType?: string | undefined;
}

/** What client authentication needs from the assembled core. */
export interface ClientAuthDeps {
  mode: ClientsMode;
  /** The registered client with this id (the authenticator's cache, dropped on every change). */
  findClient(clientId: string): ClientRecord | undefined | Promise<ClientRecord | undefined>;
}

/**
 * The registered client a request comes from, authenticated (confidential) or identified
 * (public); null when the request may go on anonymously (open mode). Throws
 * InvalidClientError (401) when authentication fails or a client is required and missing,
 * UnauthorizedClientError (400) when the client may not use the grant.
 */
export async function authenticateClient(deps: ClientAuthDeps, request: ClientAuthRequest): Promise<RegisteredClient | null> {
  const { credentials, endpoint, grantType } = request;
  const id = credentials.clientId === '' ? null : credentials.clientId;
  const secret = credentials.clientSecret === '' ? null : credentials.clientSecret;
  // Where only a registered client will do (RFC 6749 §4.4.2 and RFC 7662 §2.1: the client
  // authenticates; SPEC §7.2: PORTCULLIS_CLIENTS=registered, for the token endpoint).
  // RFC 8936 §4.1: the transmitter authenticates the receiver that polls.
  const required = endpoint === 'introspect' || endpoint === 'events' || grantType === 'client_credentials' || (deps.mode === 'registered' && endpoint !== 'revoke');
  if (id === null) {
    if (required) throw new InvalidClientError('Client authentication required');
    return null;
  }
  const found = isClientIdShape(id) ? deps.findClient(id) : undefined;
  const record = found instanceof Promise ? await found : found;
  if (!record) {
    if (required || deps.mode === 'registered') throw new InvalidClientError('Unknown client');
    // Open mode: an unregistered client_id is accepted and ignored (SPEC §7).
    return null;
  }
  if (record.type === 'confidential') {
    if (secret === null) throw new InvalidClientError('Client authentication required: send the client secret');
    if (!checkClientSecret(record, secret)) throw new InvalidClientError();
  } else if (secret !== null) {
    // A public client has no secret; one sent is a mistake or a guess, never a credential.
    throw new InvalidClientError('A public client has no secret');
  }
  // RFC 7662 §2.1: the protected resource calling introspection authenticates.
  if (endpoint === 'introspect' && record.type !== 'confidential') throw new InvalidClientError('Introspection needs a confidential client');
  if (endpoint === 'events' && record.type !== 'confidential') throw new InvalidClientError('The security event feed needs a confidential client');
  if (endpoint === 'token' && grantType !== undefined) {
    if (!record.grants.includes(grantType)) throw new UnauthorizedClientError(`This client may not use the ${grantType} grant`);
    // RFC 9700 §2.4: passwords only to clients the operator trusts with them.
    if (grantType === 'password' && deps.mode === 'registered' && !record.firstParty) throw new UnauthorizedClientError('The password grant is only for first-party clients');
  }
  return registeredClientOf(record);
}

/** The RegisteredClient of a record, made once per record object (the cache hands out the same one until a change). */
const registeredByRecord = new WeakMap<ClientRecord, RegisteredClient>();
function registeredClientOf(record: ClientRecord): RegisteredClient {
  let registered = registeredByRecord.get(record);
  if (registered === undefined) {
    registered = toRegisteredClient(record);
    registeredByRecord.set(record, registered);
  }
  return registered;
}

/**
 * RFC 6749 §6 (and §10.4): a refresh token is bound to the client it was issued to. A
 * session obtained by a registered client is refreshed only by that client; one obtained
 * anonymously (or with an unregistered open-mode `client_id`) only anonymously. Otherwise
 * `invalid_grant` ("issued to another client", RFC 6749 §5.2).
 *
 * @example
 * await assertSessionClient(findClient, state.session.clientId, input.client.registered);
 */
export async function assertSessionClient(
  findClient: ((clientId: string) => unknown) | undefined,
  sessionClientId: string | null,
  client: RegisteredClient | null | undefined,
): Promise<void> {
  const otherClient = (): InvalidGrantError => new InvalidGrantError('Refresh token was issued to another client');
  if (client) {
    if (sessionClientId !== client.clientId) throw otherClient();
    return;
  }
  if (sessionClientId === null || !isClientIdShape(sessionClientId) || findClient === undefined) return;
  if (await findClient(sessionClientId)) throw otherClient();
}
