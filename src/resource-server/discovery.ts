/**
 * Finding the endpoints from an issuer: the authorization server's RFC 8414 metadata (its
 * `jwks_uri`, `introspection_endpoint`) and the transmitter's OpenID SSF configuration (its
 * `jwks_uri` for SETs and the RFC 8936 poll endpoint). Each document must name, as its
 * `issuer`, exactly the issuer it was fetched for (RFC 8414 §3.3, OpenID SSF 1.0 §7.2), so
 * a document served elsewhere cannot hand out its own keys.
 *
 * @example
 * const server = await discoverAuthorizationServer('https://auth.example.com', { fetch, timeoutMs: 10_000, allowInsecure: false });
 * const transmitter = await discoverTransmitter('https://auth.example.com', { fetch, timeoutMs: 10_000, allowInsecure: false });
 */
import { POLL_DELIVERY_METHOD, SSF_CONFIGURATION_PATH } from './event-types.ts';
import { endpointUrl, fetchJson, isObject, type Fetch } from './http.ts';

export interface DiscoveryOptions {
  fetch: Fetch;
  timeoutMs: number;
  allowInsecure: boolean;
}

/** What the library needs of the authorization server. */
export interface AuthorizationServer {
  jwksUri: URL;
  /** RFC 7662, when the metadata lists it. */
  introspectionEndpoint: URL | undefined;
}

/** What the library needs of the transmitter. */
export interface Transmitter {
  issuer: string;
  jwksUri: URL;
  pollEndpoint: URL;
}

/**
 * RFC 8414 §3.1 (and OpenID SSF 1.0 §7.2 alike): the well-known path goes between the host
 * and the issuer's path, whose terminating "/" is dropped.
 *
 * @example
 * wellKnownUrl('https://example.com/tenant/', '/.well-known/ssf-configuration') // https://example.com/.well-known/ssf-configuration/tenant
 */
export function wellKnownUrl(issuer: string, wellKnownPath: string): URL {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return new URL(`${url.origin}${wellKnownPath}${path}`);
}

async function document(url: URL, issuer: string, options: DiscoveryOptions): Promise<Record<string, unknown>> {
  const body = await fetchJson(options.fetch, url, {}, options.timeoutMs);
  if (!isObject(body)) throw new TypeError(`${url.href} is not a JSON object`);
  if (body.issuer !== issuer) throw new TypeError(`${url.href} names the issuer ${JSON.stringify(body.issuer)}, not ${JSON.stringify(issuer)} (RFC 8414 §3.3)`);
  return body;
}

/** Reads the RFC 8414 metadata of `issuer`. */
export async function discoverAuthorizationServer(issuer: string, options: DiscoveryOptions): Promise<AuthorizationServer> {
  const url = wellKnownUrl(issuer, '/.well-known/oauth-authorization-server');
  const metadata = await document(url, issuer, options);
  return {
    jwksUri: endpointUrl(metadata.jwks_uri, `jwks_uri of ${url.href}`, options.allowInsecure),
    introspectionEndpoint: metadata.introspection_endpoint === undefined ? undefined : endpointUrl(metadata.introspection_endpoint, `introspection_endpoint of ${url.href}`, options.allowInsecure),
  };
}

/**
 * Reads the SSF configuration of `issuer`: it must offer RFC 8936 poll delivery and say where
 * (the `delivery.endpoint_url` of SSF §8.1.1, see `SsfConfiguration`).
 */
export async function discoverTransmitter(issuer: string, options: DiscoveryOptions): Promise<Transmitter> {
  const url = wellKnownUrl(issuer, SSF_CONFIGURATION_PATH);
  const configuration = await document(url, issuer, options);
  const methods = configuration.delivery_methods_supported;
  const delivery = configuration.delivery;
  if (!Array.isArray(methods) || !methods.includes(POLL_DELIVERY_METHOD) || !isObject(delivery) || delivery.method !== POLL_DELIVERY_METHOD) {
    throw new TypeError(`${url.href} offers no poll delivery (${POLL_DELIVERY_METHOD}, RFC 8936)`);
  }
  return {
    issuer,
    jwksUri: endpointUrl(configuration.jwks_uri, `jwks_uri of ${url.href}`, options.allowInsecure),
    pollEndpoint: endpointUrl(delivery.endpoint_url, `delivery.endpoint_url of ${url.href}`, options.allowInsecure),
  };
}
