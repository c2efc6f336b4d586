/**
 * The origin a request was addressed to (RFC 6454 §4: scheme, host and port), as the client
 * named it: the `Host` header (or, from a trusted proxy, `X-Forwarded-Host` and
 * `X-Forwarded-Proto`, as Fastify reads them). It is the issuer in effect when none is
 * configured (`core/issuer.ts`). A missing or malformed `Host` falls back to the address the
 * listener was reached on, so no request fails for it.
 *
 * @example
 * const origin = requestOrigin(request); // 'https://auth.example.com'
 */
import type { FastifyRequest } from 'fastify';

const MAX_HOST_LENGTH = 261; // 253 for the name, then ":65535"
// RFC 9110 §7.2 / RFC 3986 §3.2.2: a reg-name (letters, digits, dots, hyphens) or a bracketed
// IPv6 literal, and an optional port. Anything else (userinfo, paths, spaces) is not a host.
const HOST = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** Origins already worked out, by `scheme://host` (bounded: cleared when full; hosts come from clients). */
const origins = new Map<string, string | undefined>();
const ORIGINS_LIMIT = 256;

function originOf(scheme: string, host: string): string | undefined {
  if (host.length > MAX_HOST_LENGTH) return undefined;
  // Every request names its host: parse each distinct one once.
  const key = `${scheme}://${host}`;
  if (origins.has(key)) return origins.get(key);
  const origin = parseOrigin(scheme, host);
  if (origins.size >= ORIGINS_LIMIT) origins.clear();
  origins.set(key, origin);
  return origin;
}

function parseOrigin(scheme: string, host: string): string | undefined {
  if (!HOST.test(host)) return undefined;
  try {
    // Normalises case, a trailing default port and IPv6 spelling; refuses ports over 65535.
    const { origin } = new URL(`${scheme}://${host}`);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/**
 * `scheme://host[:port]` of the request, or undefined when neither the headers nor the socket
 * tell (then the core uses its fallback issuer).
 *
 * @example
 * app.get('/where', async (request) => ({ origin: requestOrigin(request) }));
 */
export function requestOrigin(request: FastifyRequest): string | undefined {
  const scheme = request.protocol === 'https' ? 'https' : 'http';
  const fromHeader = request.host ? originOf(scheme, request.host) : undefined;
  if (fromHeader !== undefined) return fromHeader;
  // HTTP/1.0 without Host, or a Host that names no host: where this listener was reached.
  const socket = request.socket as { localAddress?: string | undefined; localPort?: number | undefined } | undefined;
  const address = socket?.localAddress;
  if (!address || socket?.localPort === undefined) return undefined;
  return originOf(scheme, `${address.includes(':') ? `[${address}]` : address}:${socket.localPort}`);
}
