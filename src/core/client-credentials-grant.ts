/**
 * The client credentials grant (RFC 6749 §4.4; SPEC §7.3): a confidential client, already
 * authenticated (client-auth.ts), gets an access token of its own — a service token — whose
 * `sub` is its `client_id` and which names no session (no `sid`). Scopes are the requested
 * ones among the client's (none requested: all of them); one outside them is `invalid_scope`.
 * No refresh token (RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included"). The token
 * is checked on every use against its client (removing the client ends it) and its `jti`'s
 * revocation (`/revoke`).
 *
 * @example
 * const body = await clientCredentialsGrant(deps, { client, scope: 'invoices:read', origin });
 */
import type { AccessTokens } from './access-token.ts';
import { grantAudience, parseResources } from './audience.ts';
import type { RegisteredClient } from './clients.ts';
import { InvalidScopeError, UnauthorizedClientError } from './errors.ts';
import { assertKnownScopes, parseScope, type ScopeCatalog } from './scopes.ts';

/**
 * The answer of the client credentials grant: RFC 6749 §5.1 without a refresh token.
 *
 * @example
 * const { access_token, expires_in, scope } = await service.clientCredentialsGrant({ client, scope: undefined });
 */
export interface ServiceTokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
}

/** What the grant needs from the assembled core. */
export interface ClientCredentialsDeps {
  tokens: AccessTokens;
  scopes: ScopeCatalog;
}

/**
 * The scopes a service token gets: requested ∩ the client's (SPEC §7.3), never `me`.
 *
 * @example
 * serviceScopes(['a'], ['a', 'b'], catalog) // ['a']; serviceScopes([], ['a', 'b'], catalog) // ['a', 'b']
 */
export function serviceScopes(requested: readonly string[], allowed: readonly string[], catalog: ScopeCatalog): string[] {
  assertKnownScopes(requested, catalog);
  // `me` names a user (SPEC §7.1); a client holding it for another grant never gets it here.
  const grantable = allowed.filter((s) => s !== 'me' && Object.hasOwn(catalog, s));
  const outside = requested.filter((s) => !grantable.includes(s));
  if (outside.length > 0) throw new InvalidScopeError(`Scope not granted to this client: ${outside.join(' ')}`);
  return requested.length === 0 ? grantable : [...requested];
}

/** Issues a service token to an authenticated client allowed the grant. */
export function clientCredentialsGrant(deps: ClientCredentialsDeps, input: { client: RegisteredClient; scope: string | undefined; origin?: string | undefined; resource?: readonly string[] | undefined }): ServiceTokenResponse {
  const { client } = input;
  // client-auth.ts checked it; a caller of the core without it is refused all the same.
  if (!client.grants.includes('client_credentials')) throw new UnauthorizedClientError('This client may not use the client_credentials grant');
  // RFC 8707 §2: the audience among the client's own (SPEC §7.4), checked before anything is issued.
  const audience = grantAudience(parseResources(input.resource ?? []), client.audiences, deps.tokens.defaultAudience(input.origin));
  const scopes = serviceScopes(parseScope(input.scope), client.scopes, deps.scopes);
  // RFC 9068 §2.2: `client_id` and `sub` both name the client of a service token.
  const { token, expiresIn } = deps.tokens.issue({ sub: client.clientId, scope: scopes, origin: input.origin, audience: audience ?? undefined, clientId: client.clientId });
  return { access_token: token, token_type: 'bearer', expires_in: expiresIn, scope: scopes.join(' ') };
}
