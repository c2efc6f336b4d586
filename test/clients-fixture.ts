/**
 * Shared steps of the client-registry tests (SPEC §7): an admin's token, registering a client
 * through the real admin API, HTTP Basic credentials as RFC 6749 §2.3.1 builds them, and a
 * service token from the real token endpoint.
 */
import assert from 'node:assert/strict';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { login, postForm } from './helpers.ts';

export const ROOT = { username: 'root', password: 'root-password', scopes: ['me', 'admin'] } as const;

/** A registered client as `POST /clients` answers it. */
export interface CreatedClient {
  client_id: string;
  client_secret?: string;
  name: string;
  type: string;
  grants: string[];
  scopes: string[];
  audiences: string[];
  first_party: boolean;
  created_at: string;
  updated_at: string;
}

/** `Authorization: Basic …` of RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export function basic(clientId: string, clientSecret = ''): string {
  const encode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

/** The access token of a user logged in through the real route. */
export async function userToken(app: FastifyInstance, username: string, password: string, extra: Record<string, string> = {}): Promise<{ access_token: string; refresh_token: string; scope: string }> {
  const { response, body } = await login(app, username, password, extra);
  assert.equal(response.statusCode, 200, response.body);
  return body as { access_token: string; refresh_token: string; scope: string };
}

/** Calls the admin API with a bearer token. */
export function adminCall(app: FastifyInstance, token: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown): Promise<LightMyRequestResponse> {
  return app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
}

/** Registers a client through `POST /clients` and returns the answer (with its secret). */
export async function registerClient(app: FastifyInstance, adminToken: string, body: Record<string, unknown>): Promise<CreatedClient> {
  const response = await adminCall(app, adminToken, 'POST', '/clients', body);
  assert.equal(response.statusCode, 201, response.body);
  return response.json() as CreatedClient;
}

/** `grant_type=client_credentials` with HTTP Basic; returns the raw response. */
export function clientCredentials(app: FastifyInstance, clientId: string, clientSecret: string, fields: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return postForm(app, '/token', { grant_type: 'client_credentials', ...fields }, { authorization: basic(clientId, clientSecret) });
}

/** A service token for a registered confidential client. */
export async function serviceToken(app: FastifyInstance, client: CreatedClient, fields: Record<string, string> = {}): Promise<string> {
  const response = await clientCredentials(app, client.client_id, client.client_secret!, fields);
  assert.equal(response.statusCode, 200, response.body);
  return (response.json() as { access_token: string }).access_token;
}

/** Introspects `token` as `client` (HTTP Basic). */
export function introspect(app: FastifyInstance, client: CreatedClient, token: string, fields: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return postForm(app, '/introspect', { token, ...fields }, { authorization: basic(client.client_id, client.client_secret ?? '') });
}

/** Asserts an RFC 6749 §5.2 error: status, `error`, and `detail` equal to `error_description`. */
export function assertOAuthError(response: LightMyRequestResponse, status: number, error: string): Record<string, string> {
  assert.equal(response.statusCode, status, response.body);
  const body = response.json() as Record<string, string>;
  assert.equal(body.error, error, response.body);
  assert.equal(typeof body.detail, 'string');
  assert.equal(body.error_description, body.detail);
  return body;
}

/** Asserts 401 invalid_client with `WWW-Authenticate: Basic realm="portcullis"` (RFC 6749 §5.2). */
export function assertInvalidClient(response: LightMyRequestResponse): void {
  assertOAuthError(response, 401, 'invalid_client');
  assert.equal(response.headers['www-authenticate'], 'Basic realm="portcullis"');
}
