/**
 * Fixtures of the SPEC §10 tests: the real app and store (test/helpers.ts) with accounts
 * configured, a real SMTP server (test/smtp.ts) and the real mail sender delivering to it.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { AccountOptions } from '../src/core/accounts.ts';
import { mailSealKey } from '../src/core/mail-seal.ts';
import { startMailSender, type MailSender } from '../src/mail-sender.ts';
import { createTestContext, TEST_SECRET, type TestContext } from './helpers.ts';
import { startSmtpCatcher, type SmtpCatcher } from './smtp.ts';

export const PUBLIC_URL = 'https://auth.portcullis.test/base';
export const MAIL_FROM = 'Portcullis <no-reply@portcullis.test>';

export interface AccountTestContext extends TestContext {
  smtp: SmtpCatcher;
  sender: MailSender | undefined;
}

/**
 * A test context with `accounts` (default: registration open and mail on), an SMTP catcher
 * and — with mail — a sender on the service's (manual) clock, so mail queued at any clock time is due.
 */
export async function accountContext(databaseUrl: string, accounts: AccountOptions = { registration: true, mail: { publicUrl: PUBLIC_URL } }): Promise<AccountTestContext> {
  const smtp = await startSmtpCatcher();
  const t = await createTestContext({ databaseUrl, accounts });
  const sender = accounts.mail
    ? startMailSender({ store: t.store, smtpUrl: smtp.url, from: MAIL_FROM, sealKey: mailSealKey(TEST_SECRET), clock: t.clock, pollIntervalMs: 50, retryDelayMs: () => 50 })
    : undefined;
  return {
    ...t,
    smtp,
    sender,
    async close() {
      await sender?.stop();
      await t.close();
      await smtp.close();
    },
  };
}

/** POSTs JSON (from `address`, default 127.0.0.1). */
export function postJson(app: FastifyInstance, url: string, body: unknown, address = '127.0.0.1'): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, remoteAddress: address, headers: { 'content-type': 'application/json' }, payload: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** What a test registers unless it says otherwise. */
export const JANE = Object.freeze({ username: 'jane', password: 'correct horse battery', email: 'jane@example.com', full_name: 'Jane Doe' });

/** Rows of an account table, counted. */
export async function countRows(t: TestContext, table: 'users' | 'mail_outbox' | 'one_time_tokens'): Promise<number> {
  const { n } = await t.store.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(n);
}
