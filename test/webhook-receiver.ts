/**
 * A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records every request
 * (headers, body, whether it was answered) and answers as the test scripts it — a status, or
 * `hold` to keep the request open until `release` (a slow or hung receiver). Plus bounded
 * polling, and verification with the real `standardwebhooks` package.
 *
 * @example
 * const receiver = await startReceiver((n) => (n === 0 ? 500 : 200));
 * await waitFor(() => receiver.requests.length === 2, 10_000, 'two requests');
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedRequest {
  index: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Set once an answer was written. */
  answered: boolean;
  /** Set when the client closed the connection before an answer (an abandoned attempt). */
  abandoned: boolean;
  response: ServerResponse;
}

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Answers a held request. */
  release(request: ReceivedRequest, status?: number): void;
  close(): Promise<void>;
}

/** What to answer the `n`th request (0-based): a status, or `hold` to leave it open. */
export type Script = (n: number, request: ReceivedRequest) => number | 'hold';

export async function startReceiver(script: Script = () => 200, port = 0): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        index: requests.length,
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        answered: false,
        abandoned: false,
        response: res,
      };
      requests.push(request);
      res.on('close', () => {
        if (!request.answered) request.abandoned = true;
      });
      const answer = script(request.index, request);
      if (answer !== 'hold') reply(request, answer);
    });
  });
  const reply = (request: ReceivedRequest, status: number): void => {
    if (request.answered || request.abandoned) return;
    request.answered = true;
    request.response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
  };
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actualPort}/hook`,
    port: actualPort,
    requests,
    release: (request, status = 200) => reply(request, status),
    async close() {
      for (const request of requests) if (!request.answered) request.response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `condition` every 20 ms until it holds; fails naming `what` after `ms`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Verifies a received request with the `standardwebhooks` package; returns the parsed body (throws when the signature is wrong). */
export function verified(secret: string, request: ReceivedRequest): Record<string, unknown> {
  return new Webhook(secret).verify(request.body, request.headers as Record<string, string>) as Record<string, unknown>;
}

/** The `webhook-id` header of a request. */
export const messageIdOf = (request: ReceivedRequest): string => String(request.headers['webhook-id']);
