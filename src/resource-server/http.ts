/**
 * The library's few HTTP calls, bounded: every request has a deadline, every answer a size
 * limit, and every endpoint it will send a client secret or trust keys from must be `https:`
 * (plain `http:` only on the loopback, or when the caller allows it).
 *
 * @example
 * const metadata = await fetchJson(fetch, new URL('https://auth.example.com/.well-known/oauth-authorization-server'), {}, 10_000);
 */

/** The `fetch` the library calls: the global one unless the caller passes another. */
export type Fetch = typeof globalThis.fetch;

/** The largest JSON answer read (a JWKS, metadata, a batch of SETs). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** A request that did not give a usable answer: network error, timeout, non-2xx, not JSON, too large. */
export class FetchError extends Error {
  constructor(
    message: string,
    /** The HTTP status when there was an answer. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The URL of `value`, or a TypeError naming `name`: an absolute `https:` URL, or `http:` on the
 * loopback (or anywhere with `allowInsecure`). RFC 8414 §2 and RFC 6749 §2.3.1 ask for TLS
 * where metadata is read and client secrets are sent.
 */
export function endpointUrl(value: unknown, name: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(`${name} must be an absolute URL, got ${JSON.stringify(value)}`);
  }
  if (typeof value !== 'string' || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new TypeError(`${name} must be an https: URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol === 'http:' && !allowInsecure && !LOOPBACK.has(url.hostname)) {
    throw new TypeError(`${name} must use https: (plain http: only on the loopback, or with allowInsecureRequests), got ${value}`);
  }
  return url;
}

/**
 * RFC 6749 §2.3.1: HTTP Basic with the client id and secret each form-urlencoded first.
 *
 * @example
 * basicAuthorization('reports', 's3cr:et') // 'Basic cmVwb3J0czpzM2NyJTNBZXQ='
 */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2);
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

/** Reads at most `maxBytes` of a body as UTF-8; a FetchError beyond that. */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new FetchError(`answer larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Sends a request and parses its JSON answer: a FetchError on a network error, after
 * `timeoutMs`, on a non-2xx status, a body over the limit or one that is not JSON. `signal`
 * aborts it early (an AbortError then, not a FetchError).
 */
export async function fetchJson(fetch: Fetch, url: URL, init: RequestInit, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await fetch(url, { ...init, headers: { accept: 'application/json', ...init.headers }, signal: combined, redirect: 'error' });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new FetchError(`${init.method ?? 'GET'} ${url.href}: ${timeout.aborted ? `no answer within ${timeoutMs} ms` : String((error as Error).cause ?? (error as Error).message)}`);
  }
  let text: string;
  try {
    text = await readBounded(response, MAX_RESPONSE_BYTES);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw error instanceof FetchError ? error : new FetchError(`${url.href}: the answer broke off`, response.status);
  }
  if (!response.ok) throw new FetchError(`${init.method ?? 'GET'} ${url.href}: HTTP ${response.status}`, response.status);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FetchError(`${url.href}: the answer is not JSON`, response.status);
  }
}

/** Whether `value` is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
