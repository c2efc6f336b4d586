/**
 * `request.log` as requestChildLogger makes it writes exactly what pino's own child would:
 * the request id binding, the redaction of credentials and query strings, serializers, level.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { buildApp, loggerOptions } from '../src/app.ts';
import { requestChildLogger } from '../src/request-logger.ts';
import type { FastifyBaseLogger } from 'fastify';
import { createTestContext } from './helpers.ts';

function capture(level: string): { logger: FastifyBaseLogger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(loggerOptions(level), { write: (line: string) => void lines.push(line) }) as unknown as FastifyBaseLogger;
  return { logger, lines };
}

const withoutTime = (line: string): string => line.replace(/"time":\d+,/, '');

test('its lines are byte for byte those of pino’s own child, redaction included', () => {
  const { logger, lines } = capture('info');
  const ours = requestChildLogger(logger, { reqId: 'req-7' }, {});
  const theirs = logger.child({ reqId: 'req-7' }, {});
  const error = new Error('failed at /token?password=hunter2');
  for (const log of [ours, theirs]) {
    log.warn({ user: { password: 'p' }, body: { password: 'x', token: 't' }, nested: { access_token: 'a' }, url: '/users/me?access_token=abc' }, 'saw /token?password=hunter2');
    log.error({ err: error }, 'unhandled error');
    log.info('plain');
    log.child({ extra: 'more' }).warn('grandchild');
  }
  assert.equal(lines.length, 8);
  for (let i = 0; i < 4; i++) assert.equal(withoutTime(lines[i]!), withoutTime(lines[i + 4]!));
  assert.match(lines[0]!, /"reqId":"req-7"/);
  assert.doesNotMatch(lines.join(''), /hunter2|"p"|"x"|"t"|abc|"a"/, lines.join(''));
  assert.deepEqual((ours as pino.Logger).bindings(), { reqId: 'req-7' });
  assert.equal(ours.level, 'info');
});

test('ids that need escaping, and options or serialized bindings, give pino’s own result', () => {
  const { logger, lines } = capture('info');
  for (const [bindings, options] of [
    [{ reqId: 'a"b\\c\u2028\u0000' }, {}],
    [{ reqId: 'req-1' }, { level: 'error' }],
    [{ reqId: 'req-1', req: { method: 'GET', url: '/x?secret=1' } }, {}],
    [{ reqId: 42 }, {}],
  ] as const) {
    const ours = requestChildLogger(logger, bindings, options);
    const theirs = logger.child(bindings, options);
    assert.equal(ours.level, theirs.level);
    ours.error('one');
    theirs.error('one');
    assert.equal(withoutTime(lines.at(-2)!), withoutTime(lines.at(-1)!));
  }
});

test('in the app at warn, a request’s warning and its 500 carry its request id', async () => {
  const t = await createTestContext();
  const lines: string[] = [];
  const app = await buildApp({ service: t.service, logger: loggerOptions('warn'), logStream: { write: (line: string) => void lines.push(line) } });
  app.get('/warn', async (request) => {
    request.log.warn({ user: { password: 'p' } }, 'careful');
    request.log.info('not written at warn');
    return { ok: true };
  });
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  try {
    assert.equal((await app.inject({ method: 'GET', url: '/warn' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/boom' })).statusCode, 500);
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(entries.map((e) => [e.level, e.msg]), [[40, 'careful'], [50, 'unhandled error']]);
    assert.deepEqual(entries[0]!.user, { password: '[REDACTED]' });
    assert.match(String(entries[0]!.reqId), /^req-/);
    assert.match(String(entries[1]!.reqId), /^req-/);
    assert.notEqual(entries[0]!.reqId, entries[1]!.reqId);
  } finally {
    await app.close();
    await t.close();
  }
});
