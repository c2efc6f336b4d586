/**
 * Session operations behind the self-service routes and the revocation endpoint (SPEC §2.3):
 * list a user's live sessions, end one, log out, revoke a token (RFC 7009); the password
 * change, which ends the user's other sessions, is in `password-change.ts`. Ending a session is what makes its tokens fail: the store announces the change
 * and the authenticator's cache drops the session, so an access token already issued fails on
 * the very next request and its refresh tokens are `invalid_grant` from then on.
 *
 * @example
 * const sessions = await listSessions(deps, user.id, principal.sessionId);
 */
import { LEEWAY_SECONDS, type AccessTokens, type VerifiedAccessToken } from './access-token.ts';
import type { RegisteredClient } from './clients.ts';
import type { Clock } from './clock.ts';
import { NotFoundError } from './errors.ts';
import { eventFrom, type EventContext } from './events.ts';
import type { LoginLimiter } from './login-limiter.ts';
import type { AuthObserver } from './observer.ts';
import type { PasswordHasher } from './password.ts';
import type { ScopeCatalog } from './scopes.ts';
import { hashRefreshToken, MAX_REFRESH_TOKEN_LENGTH } from './session-token.ts';
import type { SessionRecord, Store } from './store.ts';

/**
 * A session as `GET /users/me/sessions` shows it; times are ISO 8601 UTC strings.
 *
 * @example
 * const sessions: SessionView[] = await service.listSessions(request.user.id, request.principal.sessionId);
 */
export interface SessionView {
  /** The `sid` of the session's access tokens. */
  id: string;
  created_at: string;
  last_used_at: string;
  client_address: string | null;
  user_agent: string | null;
  /** True for the session of the token that asked. */
  current: boolean;
}

/** What the session operations (and the password change, `password-change.ts`) need from the assembled core. */
export interface SessionDeps {
  store: Store;
  tokens: AccessTokens;
  hasher: PasswordHasher;
  limiter: LoginLimiter;
  scopes: ScopeCatalog;
  clock: Clock;
  /** Told about the sessions these operations end. */
  observer?: AuthObserver;
}

/** The wire form of a session. */
export function toSessionView(session: SessionRecord, currentSessionId: string | undefined): SessionView {
  return {
    id: session.id,
    created_at: new Date(session.createdAt).toISOString(),
    last_used_at: new Date(session.lastUsedAt).toISOString(),
    client_address: session.clientAddress,
    user_agent: session.userAgent,
    current: session.id === currentSessionId,
  };
}

/** A page of a list: at most `limit` items after skipping `offset`. */
export interface PageRequest {
  limit: number;
  offset: number;
}

/** SPEC §4: `GET /users/me/sessions` pages, 50 by default. */
export const DEFAULT_SESSIONS_PAGE: Readonly<PageRequest> = Object.freeze({ limit: 50, offset: 0 });

/**
 * One page of the user's live sessions, newest first, the caller's own marked `current`, and
 * how many live sessions the user has in all.
 *
 * @example
 * const { items, total } = await listSessions(deps, user.id, principal.sessionId, { limit: 50, offset: 0 });
 */
export async function listSessions(
  deps: Pick<SessionDeps, 'store' | 'clock'>,
  userId: string,
  currentSessionId?: string,
  page: PageRequest = DEFAULT_SESSIONS_PAGE,
): Promise<{ items: SessionView[]; total: number }> {
  const { items, total } = await deps.store.listUserSessions(userId, deps.clock(), page);
  return { items: items.map((s) => toSessionView(s, currentSessionId)), total };
}

/**
 * Ends one of the user's own live sessions. Another user's session, an unknown id and one
 * already ended all answer NotFoundError alike, so ids of other users' sessions cannot be probed.
 */
export async function endSession(deps: Pick<SessionDeps, 'store' | 'clock' | 'observer'>, userId: string, sessionId: string, context?: EventContext): Promise<void> {
  const now = deps.clock();
  const state = await deps.store.getAuthState(sessionId);
  const session = state?.session;
  if (!session || session.userId !== userId || session.revokedAt !== null || session.expiresAt <= now) {
    throw new NotFoundError('Session not found');
  }
  const ended = eventFrom('session.ended', now, context, { username: state.user.username, detail: { reason: 'revoked' } });
  if (await deps.store.revokeSession(sessionId, now, ended)) deps.observer?.sessionsEnded('revoked', 1);
}

/** Ends the caller's current session (`POST /logout`). */
export async function logout(deps: Pick<SessionDeps, 'store' | 'clock' | 'observer'>, sessionId: string, context?: EventContext): Promise<void> {
  const now = deps.clock();
  const ended = eventFrom('session.ended', now, context, { username: context?.actor ?? null, detail: { reason: 'logout' } });
  if (await deps.store.revokeSession(sessionId, now, ended)) deps.observer?.sessionsEnded('logout', 1);
}

/**
 * Revokes the session of an access or refresh token (RFC 7009 §2.1), or a service token
 * (`client_credentials`, which has no session: its `jti` is recorded as revoked). Unknown,
 * malformed or expired tokens are ignored without error (§2.2: the client cannot act on the
 * difference). `tokenTypeHint` only picks which kind is tried first; the other is tried next,
 * and an unknown hint is ignored (§2.1). With an authenticated `client`, only tokens issued
 * to that client are revoked (§2.1: the server "verifies whether the token was issued to the
 * client making the revocation request"); others are ignored the same way. Returns whether a
 * live session (or service token) was ended.
 */
export async function revokeToken(
  deps: Pick<SessionDeps, 'store' | 'tokens' | 'clock' | 'observer'>,
  input: { token: string; tokenTypeHint?: string | undefined; client?: RegisteredClient | null | undefined },
  context?: EventContext,
): Promise<boolean> {
  const { store, tokens, clock } = deps;
  const owner = input.client?.clientId;
  const endSession = async (sessionId: string): Promise<boolean> => {
    const now = clock();
    const state = await store.getAuthState(sessionId);
    // Issued to another client: ignored, as an unknown token is (RFC 7009 §2.2).
    if (owner !== undefined && state?.session.clientId !== owner) return false;
    // The username for the event (RFC 7009 revocation is not authenticated, so actor stays `system`).
    const username = state?.user.username ?? null;
    const ended = await store.revokeSession(sessionId, now, eventFrom('session.ended', now, context, { username, actor: username ?? context?.actor ?? 'system', detail: { reason: 'revoked' } }));
    if (ended) deps.observer?.sessionsEnded('revoked', 1);
    return ended;
  };
  const asAccessToken = async (): Promise<boolean | undefined> => {
    let claims: VerifiedAccessToken;
    try {
      // Any audience: a token issued for another resource is still ours to revoke (RFC 7009 §2).
      claims = tokens.verify(input.token, { audience: false });
    } catch {
      return undefined;
    }
    if (claims.sid !== undefined) return endSession(claims.sid);
    // A service token: its `sub` is the client it was issued to (SPEC §7.3).
    if (owner !== undefined && claims.sub !== owner) return false;
    return store.revokeServiceToken(claims.jti, claims.sub, (claims.exp + LEEWAY_SECONDS) * 1000, clock());
  };
  const asRefreshToken = async (): Promise<boolean | undefined> => {
    if (input.token.length > MAX_REFRESH_TOKEN_LENGTH) return undefined;
    const sessionId = (await store.findRefreshToken(hashRefreshToken(input.token)))?.session.id;
    return sessionId === undefined ? undefined : endSession(sessionId);
  };
  const accessFirst = input.tokenTypeHint === 'access_token' || (input.tokenTypeHint !== 'refresh_token' && input.token.includes('.'));
  const order = accessFirst ? [asAccessToken, asRefreshToken] : [asRefreshToken, asAccessToken];
  for (const lookUp of order) {
    const ended = await lookUp();
    if (ended !== undefined) return ended;
  }
  return false;
}
