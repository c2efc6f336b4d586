/**
 * Raw bytes over a TCP socket, for requests no HTTP client would send (truncated, malformed,
 * odd header bytes): resolves with the status code of the answer, 0 when the server closed
 * without one.
 *
 * @example
 * assert.equal(await rawStatus(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 404);
 */
import { connect } from 'node:net';

export function rawStatus(port: number, bytes: string | Buffer, options: { halfClose?: boolean } = {}): Promise<number> {
  const halfClose = options.halfClose ?? true;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5000);
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0));
    });
    socket.write(bytes, () => {
      if (halfClose) socket.end();
    });
  });
}
