/**
 * The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).
 * Every use rotates the token, atomically in the store, so one token has at most one
 * successor however many requests race. The successor is derived from the old token with an
 * HMAC under the rotation key, so a repeated use inside the grace window is answered with the
 * same successor without any token being stored in the clear. After the window a reuse is
 * treated as theft and ends the whole session.
 *
 * Expiry slides: each refresh token lives `refreshTokenTtl` seconds from its issue, and a
 * rotation moves the session's expiry to its successor's. A session therefore ends after
 * `refreshTokenTtl` seconds without a refresh (or when revoked), never while in regular use.
 *
 * @example
 * const body = await refreshGrant(deps, { refreshToken, scope: undefined, client });
 */
import type { AccessTokens } from './access-token.ts';
import { parseResources, refreshAudience } from './audience.ts';
import { assertSessionClient } from './client-auth.ts';
import { clientHeldScopes } from './clients.ts';
import type { Clock } from './clock.ts';
import { InactiveUserError, InvalidGrantError, InvalidScopeError } from './errors.ts';
import { eventFrom } from './events.ts';
import type { AuthObserver } from './observer.ts';
import { tokenClientOf, type ClientContext, type TargetInput, type TokenResponse } from './password-grant.ts';
import { assertKnownScopes, parseScope, type ScopeCatalog } from './scopes.ts';
import { hashRefreshToken, MAX_REFRESH_TOKEN_LENGTH, successorRefreshToken } from './session-token.ts';
import type { RefreshTokenState, Store } from './store.ts';

/** What the refresh grant needs from the assembled core. */
export interface RefreshGrantDeps {
  store: Store;
  tokens: AccessTokens;
  scopes: ScopeCatalog;
  /** Seconds a refresh token lives from its issue. */
  refreshTokenTtl: number;
  /** Seconds after a rotation during which a reuse gets the same successor; 0 turns it off. */
  refreshReuseGrace: number;
  rotationKey: string | Buffer;
  /** Resources (RFC 8707) a request with no registered client may ask for (`PORTCULLIS_AUDIENCES`); default none. */
  audiences?: readonly string[] | undefined;
  clock: Clock;
  /** Told about detected reuse and the sessions it ends. */
  observer?: AuthObserver;
  /** The registered client of this id, if any (to know whose session is whose, SPEC §7.2). */
  findClient?: ((clientId: string) => unknown) | undefined;
}

/**
 * The scopes a refresh grants (RFC 6749 §6): the session's scopes the user still holds
 * (and the catalog still lists), narrowed to `requested` when one is given. A requested scope
 * outside the session's grant is `invalid_scope` — a refresh never widens a session.
 *
 * @example
 * refreshScopes(['me'], ['me', 'admin'], ['me', 'admin'], catalog) // ['me']
 */
export function refreshScopes(requested: readonly string[], sessionScopes: readonly string[], held: readonly string[], catalog: ScopeCatalog): string[] {
  assertKnownScopes(requested, catalog);
  const beyond = requested.filter((s) => !sessionScopes.includes(s));
  if (beyond.length > 0) throw new InvalidScopeError(`Scope not granted to this session: ${beyond.join(' ')}`);
  // Scopes the user has lost since login (or that left the catalog) are dropped.
  const still = sessionScopes.filter((s) => held.includes(s) && Object.hasOwn(catalog, s));
  if (requested.length === 0) return still;
  const granted = requested.filter((s) => still.includes(s));
  // As for the password grant: a non-empty request of which nothing is held is refused.
  if (granted.length === 0) throw new InvalidScopeError(`None of the requested scopes is granted to this user: ${requested.join(' ')}`);
  return granted;
}

/** Exchanges a refresh token for a new access token and the token's one successor (RFC 6749 §6). */
export async function refreshGrant(
  deps: RefreshGrantDeps,
  input: { refreshToken: string; scope: string | undefined; client: ClientContext } & TargetInput,
): Promise<TokenResponse> {
  const { store, clock } = deps;
  const requested = parseScope(input.scope);
  assertKnownScopes(requested, deps.scopes);
  const ask: Ask = { scopes: requested, resources: parseResources(input.resource ?? []), input };
  if (input.refreshToken.length > MAX_REFRESH_TOKEN_LENGTH) throw new InvalidGrantError('Invalid refresh token');

  const tokenHash = hashRefreshToken(input.refreshToken);
  const successor = successorRefreshToken(input.refreshToken, deps.rotationKey);
  let state = await store.findRefreshToken(tokenHash);
  let now = clock();
  // RFC 6749 §6: the refresh token must have been issued to the client asking (checked before
  // anything is rotated or counted as reuse).
  if (state) await assertSessionClient(deps.findClient, state.session.clientId, input.client.registered);

  if (state && state.refreshToken.rotatedAt === null) {
    const granted = usableOrThrow(deps, state, ask, now);
    const next = { tokenHash: hashRefreshToken(successor), expiresAt: now + deps.refreshTokenTtl * 1000 };
    if (await store.rotateRefreshToken(tokenHash, next, now)) return respond(deps, state, granted, successor, input);
    // Another request rotated it first, or the session was revoked meanwhile: read again. A
    // race lost inside the grace window is a reuse and gets the winner's same successor.
    state = await store.findRefreshToken(tokenHash);
    now = clock();
    if (state && state.refreshToken.rotatedAt === null) {
      usableOrThrow(deps, state, ask, now);
      throw new InvalidGrantError('Invalid refresh token');
    }
  }
  if (!state || state.refreshToken.rotatedAt === null) throw new InvalidGrantError('Invalid refresh token');

  // A reuse of a rotated token.
  const { session } = state;
  const elapsed = now - state.refreshToken.rotatedAt;
  if (session.revokedAt === null && elapsed >= deps.refreshReuseGrace * 1000) {
    // RFC 9700 §4.14.2: a rotated token used again means two parties hold it; end the
    // session so neither the thief's nor the victim's tokens keep working.
    deps.observer?.refreshReuseDetected();
    const context = { actor: 'system', address: input.client.address, userAgent: input.client.userAgent, clientId: input.client.clientId };
    const fields = { username: state.user.username, sessionId: session.id };
    await store.appendEvents([eventFrom('refresh.reuse_detected', now, context, fields)]);
    if (await store.revokeSession(session.id, now, eventFrom('session.ended', now, context, { ...fields, detail: { reason: 'theft' } }))) deps.observer?.sessionsEnded('theft', 1);
    throw new InvalidGrantError('Refresh token was already used');
  }
  const granted = usableOrThrow(deps, state, ask, now);
  return respond(deps, state, granted, successor, input);
}

/** What a refresh asks for: scopes, resources (checked), and who asks. */
interface Ask {
  scopes: readonly string[];
  resources: readonly string[];
  input: { client: ClientContext } & TargetInput;
}

/** What a refresh grants: the new access token's scopes and audience. */
interface Grant {
  scopes: string[];
  audience: string[];
}

/** Checks that the token's session can still be refreshed and returns the scopes and audience to grant. */
function usableOrThrow(deps: RefreshGrantDeps, state: RefreshTokenState, ask: Ask, now: number): Grant {
  const { session, user, refreshToken } = state;
  // SPEC §2.1: a user disabled since the login is told so. Disabling also ended the session,
  // so this is checked first; the session stays ended when the user is enabled again.
  if (user.disabled) throw new InactiveUserError();
  if (session.revokedAt !== null) throw new InvalidGrantError('Refresh token was revoked');
  if (refreshToken.expiresAt <= now || session.expiresAt <= now) throw new InvalidGrantError('Refresh token expired');
  // A registered client is held to its scopes (SPEC §7.2), also those it lost since the login.
  const scopes = refreshScopes(ask.scopes, session.scopes, clientHeldScopes(user.scopes, ask.input.client.registered), deps.scopes);
  // SPEC §7.4, RFC 8707 §2.2: the session's audience, or the part of it `resource` names.
  const allowed = tokenClientOf(ask.input)?.audiences ?? deps.audiences ?? [];
  const audience = refreshAudience(ask.resources, session.audience, allowed, deps.tokens.defaultAudience(ask.input.client.origin));
  return { scopes, audience };
}

function respond(deps: RefreshGrantDeps, state: RefreshTokenState, grant: Grant, refreshToken: string, input: { client: ClientContext } & TargetInput): TokenResponse {
  const { token, expiresIn } = deps.tokens.issue({
    sub: state.user.id,
    sid: state.session.id,
    scope: grant.scopes,
    origin: input.client.origin,
    audience: grant.audience,
    clientId: tokenClientOf(input)?.clientId,
  });
  return { access_token: token, token_type: 'bearer', expires_in: expiresIn, refresh_token: refreshToken, scope: grant.scopes.join(' ') };
}
