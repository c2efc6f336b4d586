/**
 * One request to a server on 127.0.0.1 over a kept-alive connection, for the scenarios that
 * send their own requests besides wrk's load (propagation's polling, data-scale's token sweep).
 *
 * @example
 * const agent = new Agent({ keepAlive: true, maxSockets: 4 });
 * const status = await send(agent, port, 'GET', '/users/me', `Bearer ${token}`); // 200
 */
import { request, type Agent } from 'node:http';

/** Sends the request; resolves with the status once the body is read, rejects after 10 s without an answer. */
export function send(agent: Agent, port: number, method: 'GET' | 'POST', path: string, authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization, 'content-length': '0' }, timeout: 10_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.once('error', reject);
    req.end();
  });
}
