/**
 * Scopes: the catalog, parsing the `scope` parameter and deciding what a login is granted
 * (SPEC §2.1). RFC 6749 §3.3: scope is a space-delimited list of case-sensitive strings.
 *
 * @example
 * grantScopes(parseScope('me admin'), ['me'], DEFAULT_SCOPES); // ['me']: the held part of the request
 * grantScopes(parseScope('admin'), ['me'], DEFAULT_SCOPES); // throws InvalidScopeError: nothing requested is held
 */
import { InvalidScopeError } from './errors.ts';

/**
 * Scope name → human description (shown in the docs' Authorize dialog).
 *
 * @example
 * const scopes: ScopeCatalog = { ...DEFAULT_SCOPES, 'items:read': 'Read items.' };
 */
export type ScopeCatalog = Readonly<Record<string, string>>;

/**
 * The scopes every catalog starts from: `me` (read your own account) and `admin` (manage users).
 *
 * @example
 * createAuthService({ store, secretKey, issuer, scopes: { ...DEFAULT_SCOPES, 'items:read': 'Read items.' } });
 */
export const DEFAULT_SCOPES: ScopeCatalog = Object.freeze({
  me: 'Read information about the current user.',
  admin: 'Manage users.',
});

/**
 * The scopes new users hold unless told otherwise.
 *
 * @example
 * await service.createUser({ username: 'jane', password, scopes: [...DEFAULT_USER_SCOPES, 'items:read'] });
 */
export const DEFAULT_USER_SCOPES: readonly string[] = Object.freeze(['me']);

/** Splits a space-delimited scope string into unique names, in order (RFC 6749 §3.3). */
export function parseScope(scope: string | undefined | null): string[] {
  if (!scope) return [];
  return [...new Set(scope.split(' ').filter((s) => s !== ''))];
}

/** Throws InvalidScopeError naming every scope not in the catalog. */
export function assertKnownScopes(scopes: readonly string[], catalog: ScopeCatalog): void {
  const unknown = scopes.filter((s) => !Object.hasOwn(catalog, s));
  if (unknown.length > 0) throw new InvalidScopeError(`Unknown scope: ${unknown.join(' ')}`);
}

/**
 * Password grant: requested ∩ held; an empty request grants everything held (possibly
 * nothing). A scope outside the catalog, or a non-empty request of which nothing is held,
 * is `invalid_scope`. Held scopes that left the catalog are never granted.
 */
export function grantScopes(requested: readonly string[], held: readonly string[], catalog: ScopeCatalog): string[] {
  assertKnownScopes(requested, catalog);
  const heldKnown = held.filter((s) => Object.hasOwn(catalog, s));
  if (requested.length === 0) return heldKnown;
  const granted = requested.filter((s) => heldKnown.includes(s));
  if (granted.length === 0) throw new InvalidScopeError(`None of the requested scopes is granted to this user: ${requested.join(' ')}`);
  return granted;
}
