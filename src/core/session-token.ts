/**
 * Session ids and refresh tokens. Refresh tokens are opaque 256-bit random values stored
 * only as SHA-256 hashes (SPEC §3; RFC 9700 §4.14). A rotated token's successor is derived
 * from it with an HMAC under a server key, so a repeated use inside the grace window can be
 * answered with the same successor without ever storing a token in the clear.
 *
 * @example
 * const token = generateRefreshToken(); await store.createSession(s, hashRefreshToken(token));
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';

/** A new session id (128 random bits, URL-safe). */
export function generateSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * The longest value tried as a refresh token: ours are 43 characters, so anything much longer
 * is not one of ours and is refused before it is hashed or looked up.
 *
 * @example
 * if (token.length > MAX_REFRESH_TOKEN_LENGTH) throw new InvalidGrantError('Invalid refresh token');
 */
export const MAX_REFRESH_TOKEN_LENGTH = 512;

/** A new refresh token: 256 random bits, URL-safe. */
export function generateRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What the store keeps of a refresh token. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The one successor of a refresh token under `rotationKey` (deterministic, 256 bits). */
export function successorRefreshToken(token: string, rotationKey: string | Buffer): string {
  return createHmac('sha256', rotationKey).update('portcullis/refresh-successor\0').update(token).digest('base64url');
}

/** Derives the rotation key from the secret key, so one secret serves both purposes safely. */
export function deriveRotationKey(secretKey: string): Buffer {
  return createHmac('sha256', secretKey).update('portcullis/refresh-rotation-key').digest();
}

/** The `sid` claim of an access token this service just issued (read, not verified: it is our own), for its login event. */
export function sessionIdOf(accessToken: string): string | null {
  try {
    const payload: unknown = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'));
    const sid = (payload as { sid?: unknown } | null)?.sid;
    return typeof sid === 'string' ? sid : null;
  } catch {
    return null;
  }
}
