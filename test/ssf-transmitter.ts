/**
 * A stand-in security event transmitter for the resource-server library's tests, until
 * Portcullis serves its own feed: a real HTTP server on 127.0.0.1 with the OpenID SSF
 * configuration, a JWKS of an Ed25519 key generated here, and an RFC 8936 poll endpoint that
 * holds polls and releases them when a test pushes a SET (signed here with `jose`, a standard
 * JOSE library). It keeps one queue for its one receiver: acknowledged SETs leave it, others
 * are delivered again. With `authorizationServer`, it also plays the authorization server
 * (RFC 8414 metadata, an access-token JWKS, RFC 7662 introspection) and mints access tokens.
 *
 * @example
 * const transmitter = await startTransmitter({ authorizationServer: true });
 * const jti = await transmitter.push(SESSION_REVOKED, sid);
 * await transmitter.close();
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { POLL_DELIVERY_METHOD, SET_TYPE } from '../src/resource-server/event-types.ts';

export const RECEIVER = { clientId: 'reports-api', clientSecret: 'reports-secret: with spaces & symbols' };
/** The audience of the stand-in's access tokens. */
export const API = 'https://reports.example.com';
/** Longest a poll is held here (SPEC §8). */
const HOLD_MS = 30_000;

interface Held {
  answer(): void;
  response: ServerResponse;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } };
}

export interface SetOverrides {
  iss?: string;
  aud?: string;
  iat?: number;
  typ?: string;
  /** Sign with this key instead (its kid is still `kid`, or the key's own). */
  key?: Key;
  kid?: string;
  subject?: unknown;
}

export interface Transmitter {
  url: string;
  /** The SSF configuration's SET key, and a key nobody publishes (forgeries). */
  setKey: Key;
  strangerKey: Key;
  /** The access-token keys (with `authorizationServer`). */
  tokenKeys: Key[];
  /** Signs a SET of `type` about `subject` (an opaque id) and queues it; resolves with its jti. */
  push(type: string, subject: string, payload?: Record<string, unknown>, overrides?: SetOverrides): Promise<string>;
  /** Signs a SET without queueing it. */
  sign(type: string, subject: string, payload?: Record<string, unknown>, overrides?: SetOverrides & { jti?: string }): Promise<{ jti: string; set: string }>;
  /** Queues `set` under `jti` as it is (and releases held polls). */
  enqueue(jti: string, set: string): void;
  /** Mints an access token (RFC 9068) with these claims and header over the defaults. */
  accessToken(claims?: Record<string, unknown>, header?: Record<string, unknown>, key?: Key): Promise<string>;
  /** Every `ack` list and `setErrs` object received, in order. */
  readonly acks: string[][];
  readonly setErrs: Record<string, { err: string; description: string }>[];
  /** The `Authorization` headers polls and introspections came with. */
  readonly authorizations: string[];
  readonly counts: { polls: number; held: number; jwksFetches: number; introspections: number };
  /** Polls held right now. */
  heldNow(): number;
  /** What introspection answers for a token (default active), or 'fail' for a 500. */
  introspection: (token: string) => boolean | 'fail';
  /** While down, polls get their connection cut (held ones too): the feed is unreachable. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Starts the stand-in on a free loopback port. */
export async function startTransmitter(options: { authorizationServer?: boolean; introspection?: boolean; deliveryMethod?: string; issuerInMetadata?: string } = {}): Promise<Transmitter> {
  const setKey = await newKey('set-key-1');
  const strangerKey = await newKey('set-key-1');
  const tokenKeys = [await newKey('token-key-1'), await newKey('token-key-2')];
  const queue = new Map<string, string>();
  const held = new Set<Held>();
  let down = false;
  let url = '';
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(RECEIVER.clientId)}:${new URLSearchParams({ v: RECEIVER.clientSecret }).toString().slice(2)}`).toString('base64')}`;

  const release = (): void => {
    for (const waiter of [...held]) waiter.answer();
  };

  const transmitter: Transmitter = {
    url: '',
    setKey,
    strangerKey,
    tokenKeys,
    acks: [],
    setErrs: [],
    authorizations: [],
    counts: { polls: 0, held: 0, jwksFetches: 0, introspections: 0 },
    introspection: () => true,
    heldNow: () => held.size,
    async sign(type, subject, payload = {}, overrides = {}) {
      const jti = overrides.jti ?? randomUUID();
      const key = overrides.key ?? setKey;
      const iat = overrides.iat ?? Math.floor(Date.now() / 1000);
      const claims = {
        iss: overrides.iss ?? url,
        iat,
        jti,
        aud: overrides.aud ?? RECEIVER.clientId,
        sub_id: overrides.subject ?? { format: 'opaque', id: subject },
        events: { [type]: { event_timestamp: iat, ...payload } },
      };
      const set = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: overrides.typ ?? SET_TYPE, kid: overrides.kid ?? key.kid }).sign(key.privateKey);
      return { jti, set };
    },
    enqueue(jti, set) {
      queue.set(jti, set);
      release();
    },
    async push(type, subject, payload, overrides) {
      const { jti, set } = await transmitter.sign(type, subject, payload, overrides);
      transmitter.enqueue(jti, set);
      return jti;
    },
    async accessToken(claims = {}, header = {}, key = tokenKeys[0]!) {
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss: url, exp: now + 1800, aud: API, sub: 'user-1', client_id: 'portcullis', iat: now, jti: randomUUID(), scope: 'me reports:read', sid: 'session-1', ...claims };
      return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid, ...header }).sign(key.privateKey);
    },
    setDown(value) {
      down = value;
      if (down) for (const waiter of [...held]) waiter.response.socket?.destroy();
    },
    close: async () => {
      for (const waiter of [...held]) waiter.response.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const poll = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    transmitter.counts.polls += 1;
    if (down) {
      request.socket.destroy();
      return;
    }
    transmitter.authorizations.push(String(request.headers.authorization));
    if (request.headers.authorization !== basic) return json(response, 401, { error: 'invalid_client' });
    const body = JSON.parse(await readBody(request)) as { ack?: string[]; setErrs?: Record<string, { err: string; description: string }>; maxEvents?: number; returnImmediately?: boolean };
    // RFC 8936 §2.4: acknowledged and reported SETs leave the queue.
    transmitter.acks.push(body.ack ?? []);
    for (const jti of body.ack ?? []) queue.delete(jti);
    if (body.setErrs) {
      transmitter.setErrs.push(body.setErrs);
      for (const jti of Object.keys(body.setErrs)) queue.delete(jti);
    }
    const answer = (): void => {
      const batch = [...queue].slice(0, body.maxEvents ?? 10);
      json(response, 200, { sets: Object.fromEntries(batch), moreAvailable: queue.size > batch.length });
    };
    if (queue.size > 0 || body.returnImmediately === true) return answer();
    const waiter: Held = {
      response,
      answer: () => {
        held.delete(waiter);
        clearTimeout(timer);
        answer();
      },
    };
    const timer = setTimeout(waiter.answer, HOLD_MS);
    held.add(waiter);
    transmitter.counts.held += 1;
    response.on('close', () => {
      held.delete(waiter);
      clearTimeout(timer);
    });
  };

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', url).pathname;
    if (request.method === 'POST' && path === '/events/poll') return void poll(request, response).catch(() => response.socket?.destroy());
    if (request.method === 'GET' && path === '/.well-known/ssf-configuration') {
      const method = options.deliveryMethod ?? POLL_DELIVERY_METHOD;
      return json(response, 200, { issuer: url, jwks_uri: `${url}/ssf/jwks.json`, delivery_methods_supported: [method], delivery: { method, endpoint_url: `${url}/events/poll` } });
    }
    if (request.method === 'GET' && path === '/ssf/jwks.json') return json(response, 200, { keys: [setKey.jwk] });
    if (options.authorizationServer && request.method === 'GET' && path === '/.well-known/oauth-authorization-server') {
      return json(response, 200, {
        issuer: options.issuerInMetadata ?? url,
        jwks_uri: `${url}/jwks.json`,
        ...(options.introspection ? { introspection_endpoint: `${url}/introspect` } : {}),
      });
    }
    if (options.authorizationServer && request.method === 'GET' && path === '/jwks.json') {
      transmitter.counts.jwksFetches += 1;
      return json(response, 200, { keys: tokenKeys.map((k) => k.jwk) });
    }
    if (options.introspection && request.method === 'POST' && path === '/introspect') {
      transmitter.counts.introspections += 1;
      transmitter.authorizations.push(String(request.headers.authorization));
      if (request.headers.authorization !== basic) return json(response, 401, { error: 'invalid_client' });
      return void readBody(request).then((body) => {
        const answer = transmitter.introspection(new URLSearchParams(body).get('token') ?? '');
        if (answer === 'fail') return json(response, 500, { detail: 'Internal Server Error' });
        return json(response, 200, answer ? { active: true } : { active: false });
      });
    }
    return json(response, 404, { detail: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  transmitter.url = url;
  return transmitter;
}
