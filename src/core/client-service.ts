/**
 * The service's client operations (SPEC §7): the registry, client authentication, the
 * `client_credentials` grant and introspection, as one part of `AuthService` (which extends
 * `ClientOperations`). `createAuthService` assembles them from the same store, token signer,
 * bearer check and clock as everything else.
 *
 * @example
 * const { client, secret } = await service.createClient({ name: 'billing', grants: ['client_credentials'], scopes: ['invoices:read'] });
 * const caller = await service.authenticateClient({ credentials: { clientId: client.clientId, clientSecret: secret, method: 'client_secret_basic' }, endpoint: 'introspect' });
 */
import type { AccessTokens } from './access-token.ts';
import type { Authenticator } from './authenticate.ts';
import { authenticateClient, type ClientAuthRequest, type ClientsMode } from './client-auth.ts';
import { clientCredentialsGrant, type ServiceTokenResponse } from './client-credentials-grant.ts';
import {
  createClientAccount,
  removeClientAccount,
  requireClient,
  rotateClientSecret,
  updateClientAccount,
  type ClientChanges,
  type ClientWithSecret,
  type NewClientInput,
  type RegisteredClient,
} from './clients.ts';
import type { Clock } from './clock.ts';
import type { EventContext } from './events.ts';
import { introspectToken, type IntrospectionLimiter, type IntrospectionResponse } from './introspection.ts';
import type { AuthObserver } from './observer.ts';
import type { ScopeCatalog } from './scopes.ts';
import type { ClientRecord, Store } from './store.ts';

/**
 * What the service does for clients (SPEC §7): register and manage them, authenticate them,
 * issue service tokens and answer introspection. Part of `AuthService`.
 *
 * @example
 * const { items } = await service.listClients({ limit: 50, offset: 0 });
 */
export interface ClientOperations {
  /** `open` (the default) or `registered`: how strictly `/token` asks for a registered client (`PORTCULLIS_CLIENTS`). */
  readonly clientsMode: ClientsMode;
  /**
   * The registered client a request at `/token`, `/revoke` or `/introspect` comes from
   * (RFC 6749 §2.3.1), null when it may go on anonymously; InvalidClientError (401) or
   * UnauthorizedClientError (400) otherwise (core/client-auth.ts has the rules).
   */
  authenticateClient(request: ClientAuthRequest): Promise<RegisteredClient | null>;
  /** The client credentials grant (RFC 6749 §4.4) for an authenticated client: a service token, no refresh token. */
  clientCredentialsGrant(input: { client: RegisteredClient; scope: string | undefined; origin?: string | undefined; resource?: readonly string[] | undefined }): Promise<ServiceTokenResponse>;
  /** Token introspection (RFC 7662) for an authenticated confidential client; 429 TooManyRequestsError past the inactive-answer limit. */
  introspect(input: { client: RegisteredClient; token: string; tokenTypeHint?: string | undefined; origin?: string | undefined }): Promise<IntrospectionResponse>;
  /** Registers a client; its secret (confidential) is in this answer only. ValidationError (422) for a bad field. */
  createClient(input: NewClientInput, context?: EventContext): Promise<ClientWithSecret>;
  /** One page of the clients, oldest first, with how many there are. */
  listClients(page: { limit: number; offset: number }): Promise<{ items: ClientRecord[]; total: number }>;
  /** The client with this id; NotFoundError when there is none. */
  getClient(clientId: string): Promise<ClientRecord>;
  /** Changes a client's name, grants, scopes, audiences or first-party mark; ValidationError or NotFoundError. */
  updateClient(clientId: string, changes: ClientChanges, context?: EventContext): Promise<ClientRecord>;
  /** A new secret for a confidential client, shown this once; the old one stops at once. */
  rotateClientSecret(clientId: string, context?: EventContext): Promise<ClientWithSecret>;
  /** Removes a client and ends every session and token it obtained; false when there was no such client. */
  removeClient(clientId: string, context?: EventContext): Promise<boolean>;
}

/** What the client operations need from the assembled core. */
export interface ClientOperationsDeps {
  store: Store;
  tokens: AccessTokens;
  authenticator: Authenticator;
  scopes: ScopeCatalog;
  clock: Clock;
  observer: AuthObserver;
  mode: ClientsMode;
  introspectionLimiter: IntrospectionLimiter;
  issuerFor(origin: string | undefined): string;
  /** Runs an issuance with the newest signing key (the service's `freshKeys`). */
  freshKeys<T>(issue: () => Promise<T>): Promise<T>;
}

/**
 * The client operations over the core's parts.
 *
 * @example
 * const service = { ...userOperations, ...createClientOperations(deps) };
 */
export function createClientOperations(deps: ClientOperationsDeps): ClientOperations {
  const { store, authenticator, clock, observer } = deps;
  const registry = { store, scopes: deps.scopes, clock, observer };
  const introspection = {
    authenticate: authenticator.authenticate,
    store,
    scopes: deps.scopes,
    clock,
    issuerFor: deps.issuerFor,
    defaultAudience: (origin: string | undefined) => deps.tokens.defaultAudience(origin),
    limiter: deps.introspectionLimiter,
  };
  return {
    clientsMode: deps.mode,
    authenticateClient: (request) => authenticateClient({ mode: deps.mode, findClient: authenticator.findClient }, request),
    clientCredentialsGrant: (input) =>
      deps.freshKeys(async () => {
        const body = clientCredentialsGrant(deps, input);
        observer.tokensIssued('client_credentials');
        return body;
      }),
    introspect: (input) => introspectToken(introspection, input),
    createClient: (input, context) => createClientAccount(registry, input, context),
    listClients: (page) => store.listClients(page),
    getClient: (clientId) => requireClient(store, clientId),
    updateClient: (clientId, changes, context) => updateClientAccount(registry, clientId, changes, context),
    rotateClientSecret: (clientId, context) => rotateClientSecret(registry, clientId, context),
    removeClient: (clientId, context) => removeClientAccount(registry, clientId, context),
  };
}
