/**
 * The client registry (SPEC §7.1): registering, changing, re-keying and removing the clients
 * of other services, shared by the admin API and the CLI. A client is `confidential` (it holds
 * a secret) or `public`; it may use the grants in its `grants`, be granted only the scopes in
 * its `scopes`, and ask for the audiences in its `audiences`.
 *
 * Secrets are 256 random bits, shown once (on create and on rotate) and stored only as their
 * SHA-256. A fast hash is enough here, unlike for passwords: a password is chosen by a person
 * and can be guessed, so it needs a slow hash (argon2id) to make each guess expensive; a
 * secret of 256 random bits has no guessable structure, so even at 10^12 hashes a second an
 * attacker holding the hash needs ~10^65 years (NIST SP 800-63B §5.1.1.2 asks slow hashing
 * only of memorised secrets). It also keeps client authentication cheap enough to run on
 * every introspection. Comparison is in constant time (`timingSafeEqual`, OWASP Authentication
 * Cheat Sheet, "Compare … in constant time").
 *
 * @example
 * const { client, secret } = await createClientAccount(deps, { name: 'billing', grants: ['client_credentials'], scopes: ['invoices:read'] });
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from './clock.ts';
import { ConflictError, NotFoundError, ValidationError, type ValidationIssue } from './errors.ts';
import { eventFrom, type EventContext } from './events.ts';
import type { AuthObserver } from './observer.ts';
import type { ScopeCatalog } from './scopes.ts';
import { CLIENT_ONLY_SCOPES, EVENTS_SCOPE } from './security-events.ts';
import type { ClientPatch, ClientRecord, Store } from './store.ts';
import { textProblem } from './text.ts';

/**
 * Whether a client holds a secret (`confidential`) or not (`public`: a browser or mobile app).
 *
 * @example
 * const type: ClientType = 'confidential';
 */
export type ClientType = 'confidential' | 'public';

/**
 * A grant a client may be allowed (RFC 6749 §4.3, §6, §4.4).
 *
 * @example
 * const grants: ClientGrant[] = ['client_credentials'];
 */
export type ClientGrant = 'password' | 'refresh_token' | 'client_credentials';

/**
 * Every grant a client may be allowed.
 *
 * @example
 * CLIENT_GRANTS.includes('client_credentials') // true
 */
export const CLIENT_GRANTS: readonly ClientGrant[] = Object.freeze(['password', 'refresh_token', 'client_credentials']);

/**
 * An authenticated (confidential) or identified (public) registered client, as the grants and
 * token issuance see it: who it is and what it may have.
 *
 * @example
 * const client: RegisteredClient = { clientId: 'x3v…', audiences: ['https://api.example.com'], firstParty: false, grants: ['client_credentials'], scopes: ['invoices:read'] };
 */
export interface RegisteredClient {
  readonly clientId: string;
  readonly audiences: readonly string[];
  readonly firstParty: boolean;
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
}

/** The RegisteredClient of a stored client. */
export function toRegisteredClient(client: ClientRecord): RegisteredClient {
  return Object.freeze({ clientId: client.clientId, audiences: client.audiences, firstParty: client.firstParty, grants: client.grants, scopes: client.scopes });
}

/**
 * The scopes a user holds that a request's client may have: all of them without a
 * registered client, else those among the client's `scopes` (SPEC §7.2).
 *
 * @example
 * clientHeldScopes(['me', 'admin'], { ...client, scopes: ['me'] }) // ['me']
 */
export function clientHeldScopes(held: readonly string[], client: RegisteredClient | null | undefined): string[] {
  return client ? held.filter((s) => client.scopes.includes(s)) : [...held];
}

/** Every generated client id: 128 random bits, base64url (22 characters). */
const CLIENT_ID_SHAPE = /^[A-Za-z0-9_-]{22}$/;

/**
 * Whether `id` has the shape of a generated client id; anything else is no registered client
 * and is never looked up (so arbitrary `client_id`s of the open mode cost no query).
 *
 * @example
 * isClientIdShape('web') // false
 */
export function isClientIdShape(id: string): boolean {
  return CLIENT_ID_SHAPE.test(id);
}

/**
 * A new client id: 128 random bits, URL-safe, never beginning with `-` — a command line reads
 * a leading dash as an option, so `portcullis clients show -x…` would fail for 1 id in 64.
 */
export function generateClientId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** A new client secret: 256 random bits, URL-safe (43 characters). */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The longest secret that is hashed and compared; ours are 43 characters. */
export const MAX_CLIENT_SECRET_LENGTH = 512;

/** What the store keeps of a secret (see the module comment for why SHA-256 suffices). */
export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/**
 * Whether `secret` is the one whose hash is `storedHash`, compared in constant time. A secret
 * far longer than ours is refused before it is hashed.
 *
 * @example
 * verifyClientSecret(secret, client.secretHash) // true
 */
export function verifyClientSecret(secret: string, storedHash: string | null): boolean {
  if (storedHash === null || secret.length === 0 || secret.length > MAX_CLIENT_SECRET_LENGTH) return false;
  const given = createHash('sha256').update(secret).digest();
  const stored = Buffer.from(storedHash, 'base64url');
  return stored.length === given.length && timingSafeEqual(given, stored);
}

/**
 * A client as the admin API and the CLI show it: never its secret or the secret's hash.
 *
 * @example
 * reply.send(toPublicClient(client));
 */
export interface PublicClient {
  client_id: string;
  name: string;
  type: ClientType;
  grants: string[];
  scopes: string[];
  audiences: string[];
  first_party: boolean;
  created_at: string;
  updated_at: string;
}

/**
 * The public shape of a stored client.
 *
 * @example
 * toPublicClient(client).created_at // '2026-12-04T10:00:00.000Z'
 */
export function toPublicClient(client: ClientRecord): PublicClient {
  return {
    client_id: client.clientId,
    name: client.name,
    type: client.type,
    grants: client.grants,
    scopes: client.scopes,
    audiences: client.audiences,
    first_party: client.firstParty,
    created_at: new Date(client.createdAt).toISOString(),
    updated_at: new Date(client.updatedAt).toISOString(),
  };
}

/**
 * A client to register (`service.createClient`). Unset grants default to `client_credentials`
 * for a confidential client and `password refresh_token` for a public one; unset scopes and
 * audiences to none.
 *
 * @example
 * await service.createClient({ name: 'billing', grants: ['client_credentials'], scopes: ['invoices:read'], audiences: ['https://billing.example.com'] });
 */
export interface NewClientInput {
  name: string;
  type?: ClientType | undefined;
  grants?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  audiences?: readonly string[] | undefined;
  firstParty?: boolean | undefined;
}

/**
 * Changes to a client (`service.updateClient`); absent fields stay. The type never changes.
 *
 * @example
 * await service.updateClient(clientId, { scopes: ['invoices:read', 'invoices:write'] });
 */
export interface ClientChanges {
  name?: string | undefined;
  grants?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  audiences?: readonly string[] | undefined;
  firstParty?: boolean | undefined;
}

/**
 * A client and, for a confidential one, its secret: shown this once and never again.
 *
 * @example
 * const { client, secret } = await service.createClient({ name: 'billing' });
 */
export interface ClientWithSecret {
  client: ClientRecord;
  /** null for a public client. */
  secret: string | null;
}

/** What the registry operations need from the assembled core. */
export interface ClientDeps {
  store: Store;
  scopes: ScopeCatalog;
  clock: Clock;
  observer?: AuthObserver;
}

const MAX_NAME = 128;
const MAX_AUDIENCES = 32;
const MAX_AUDIENCE_LENGTH = 2048;

/** RFC 8707 §2: a resource is an absolute URI without a fragment. */
function audienceProblem(audience: string): string | undefined {
  const text = textProblem(audience);
  if (text) return `Audience ${text}`;
  if (audience.length > MAX_AUDIENCE_LENGTH) return `Audience must have at most ${MAX_AUDIENCE_LENGTH} characters`;
  if (audience.includes('#')) return 'Audience must not contain a fragment (RFC 8707 §2)';
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(audience) || !URL.canParse(audience)) return 'Audience must be an absolute URI (RFC 8707 §2)';
  return undefined;
}

/** The problems of a client as it would be after a create or a change; empty when fine. */
export function clientIssues(client: { name?: string | undefined; type: ClientType; grants: readonly string[]; scopes: readonly string[]; audiences: readonly string[] }, catalog: ScopeCatalog, loc = 'body'): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const issue = (field: string, msg: string): void => void issues.push({ loc: [loc, field], msg, type: 'value_error' });
  if (client.name !== undefined) {
    const text = textProblem(client.name);
    if (text) issue('name', `String ${text}`);
    else if (client.name.trim() === '' || [...client.name].length > MAX_NAME) issue('name', `Name must have 1–${MAX_NAME} characters`);
    else if (/\p{Cc}/u.test(client.name)) issue('name', 'Name must not contain control characters');
  }
  for (const grant of client.grants) {
    if (!(CLIENT_GRANTS as readonly string[]).includes(grant)) issue('grants', `Unknown grant: ${grant.slice(0, 64)} (one of ${CLIENT_GRANTS.join(', ')})`);
  }
  // RFC 6749 §4.4: only a confidential client can authenticate for client_credentials.
  if (client.type === 'public' && client.grants.includes('client_credentials')) issue('grants', 'A public client cannot use client_credentials: it has no secret');
  for (const scope of client.scopes) {
    // A client may also hold the scopes only clients can hold (`events`, SPEC §8).
    if (!Object.hasOwn(catalog, scope) && !Object.hasOwn(CLIENT_ONLY_SCOPES, scope)) issue('scopes', `Unknown scope: ${scope.slice(0, 128)}`);
  }
  // RFC 8936 §4.1: the feed's receiver authenticates, so it must hold a secret.
  if (client.type === 'public' && client.scopes.includes(EVENTS_SCOPE) && !Object.hasOwn(catalog, EVENTS_SCOPE)) issue('scopes', 'A public client cannot receive the security event feed (events): it has no secret');
  // SPEC §7.1: `me` names a user; a service token has none.
  if (client.grants.includes('client_credentials') && client.scopes.includes('me')) issue('scopes', 'The scope me names a user: it cannot be granted to a client for client_credentials');
  if (client.audiences.length > MAX_AUDIENCES) issue('audiences', `At most ${MAX_AUDIENCES} audiences`);
  for (const audience of client.audiences) {
    const problem = audienceProblem(audience);
    if (problem) issue('audiences', problem);
  }
  return issues;
}

const unique = (list: readonly string[]): string[] => [...new Set(list)];

/**
 * Registers a client; throws ValidationError (422). The secret (confidential clients) is in
 * the answer only.
 */
export async function createClientAccount(deps: ClientDeps, input: NewClientInput, context?: EventContext): Promise<ClientWithSecret> {
  const type = input.type ?? 'confidential';
  if (type !== 'confidential' && type !== 'public') throw new ValidationError([{ loc: ['body', 'type'], msg: 'Type must be confidential or public', type: 'value_error' }]);
  const draft = {
    name: input.name,
    type,
    grants: unique(input.grants ?? (type === 'confidential' ? ['client_credentials'] : ['password', 'refresh_token'])),
    scopes: unique(input.scopes ?? []),
    audiences: unique(input.audiences ?? []),
  };
  const issues = clientIssues(draft, deps.scopes);
  if (issues.length > 0) throw new ValidationError(issues);
  const secret = type === 'confidential' ? generateClientSecret() : null;
  const now = deps.clock();
  const clientId = generateClientId();
  const firstParty = input.firstParty ?? false;
  // SPEC §9.2: what the client may do, never its secret or the secret's hash.
  const event = eventFrom('client.created', now, context, {
    clientId,
    detail: { name: draft.name, type, grants: draft.grants, scopes: draft.scopes, audiences: draft.audiences, first_party: firstParty },
  });
  const client = await deps.store.createClient({ clientId, ...draft, secretHash: secret === null ? null : hashClientSecret(secret), firstParty }, now, event);
  return { client, secret };
}

/** The client with this id, or NotFoundError. */
export async function requireClient(store: Store, clientId: string): Promise<ClientRecord> {
  const client = await store.findClient(clientId);
  if (!client) throw new NotFoundError('Client not found');
  return client;
}

/** Changes a client; throws ValidationError (422, judged on the client as it would be) or NotFoundError. */
export async function updateClientAccount(deps: ClientDeps, clientId: string, changes: ClientChanges, context?: EventContext): Promise<ClientRecord> {
  const current = await requireClient(deps.store, clientId);
  const patch: ClientPatch = {
    name: changes.name,
    grants: changes.grants && unique(changes.grants),
    scopes: changes.scopes && unique(changes.scopes),
    audiences: changes.audiences && unique(changes.audiences),
    firstParty: changes.firstParty,
  };
  const issues = clientIssues(
    { name: changes.name, type: current.type, grants: patch.grants ?? current.grants, scopes: patch.scopes ?? current.scopes, audiences: patch.audiences ?? current.audiences },
    deps.scopes,
  );
  if (issues.length > 0) throw new ValidationError(issues);
  // The names (never the values) of the fields set, for `client.updated`'s detail.
  const names: Array<[keyof ClientChanges, string]> = [['name', 'name'], ['grants', 'grants'], ['scopes', 'scopes'], ['audiences', 'audiences'], ['firstParty', 'first_party']];
  const fields = names.filter(([key]) => changes[key] !== undefined).map(([, name]) => name);
  const now = deps.clock();
  const client = await deps.store.updateClient(clientId, patch, now, eventFrom('client.updated', now, context, { clientId, detail: { fields } }));
  if (!client) throw new NotFoundError('Client not found');
  return client;
}

/**
 * Gives a confidential client a new secret; the old one stops at once (every instance drops
 * its cached copy of the client). ConflictError for a public client, NotFoundError for an
 * unknown id.
 */
export async function rotateClientSecret(deps: ClientDeps, clientId: string, context?: EventContext): Promise<ClientWithSecret> {
  const current = await requireClient(deps.store, clientId);
  if (current.type !== 'confidential') throw new ConflictError('A public client has no secret');
  const secret = generateClientSecret();
  const now = deps.clock();
  const client = await deps.store.updateClient(clientId, { secretHash: hashClientSecret(secret) }, now, eventFrom('client.updated', now, context, { clientId, detail: { fields: ['secret'] } }));
  if (!client) throw new NotFoundError('Client not found');
  return { client, secret };
}

/**
 * Removes a client and ends every session it obtained, atomically (SPEC §7.1); its service
 * tokens stop with it. False when there was no such client.
 */
export async function removeClientAccount(deps: ClientDeps, clientId: string, context?: EventContext): Promise<boolean> {
  const now = deps.clock();
  const client = await deps.store.findClient(clientId);
  if (!client) return false;
  const result = await deps.store.removeClient(clientId, now, {
    removed: eventFrom('client.removed', now, context, { clientId, detail: { name: client.name } }),
    ended: eventFrom('session.ended', now, context, { clientId, detail: { reason: 'client_removed' } }),
  });
  if (!result) return false;
  if (result.endedSessions > 0) deps.observer?.sessionsEnded('client_removed', result.endedSessions);
  return true;
}
