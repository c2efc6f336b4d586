/**
 * The mail sender (SPEC §10): the part of the running service that empties the outbox.
 * Requests only write mail to the outbox table (core/store.ts `MailOutboxStore`); this loop
 * claims due mails, opens their sealed bodies, hands them to the SMTP server (nodemailer) and
 * deletes them once the server accepted them. A failure makes the mail due again after a
 * growing delay; nothing is lost when the SMTP server is down, the process restarts or an
 * instance dies mid-send (its claim's lease runs out and another instance sends the mail).
 * With several instances each mail is claimed by exactly one of them at a time.
 *
 * Delivery is at least once: a process that dies after the SMTP server accepted a mail but
 * before deleting it sends it again after the lease. A mail the server refuses for good (a
 * 5xx reply), one that cannot be opened (sealed under another secret key) or one older than
 * `maxAgeMs` (its link has expired anyway) is dropped and logged.
 *
 * @example
 * const sender = startMailSender({ store, smtpUrl: 'smtp://127.0.0.1:1025', from: 'Portcullis <no-reply@example.com>', sealKey: mailSealKey(secretKey) });
 * await sender.stop();
 */
import { createTransport } from 'nodemailer';
import { systemClock, type Clock } from './core/clock.ts';
import { openMail } from './core/mail-seal.ts';
import type { MailOutboxStore, OutboxMail } from './core/store.ts';

/** Where the sender reports; pino's logger fits. */
export interface MailSenderLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * The delay before attempt `attempt + 1` after `attempt` failed: 30 s, doubling, at most 1 h
 * (so an SMTP outage of a day costs ~30 attempts per mail), ± 20 % jitter so many queued mails
 * do not all retry at once.
 *
 * @example
 * defaultRetryDelayMs(1) // ≈ 30_000
 */
export function defaultRetryDelayMs(attempt: number): number {
  const base = Math.min(30_000 * 2 ** Math.max(0, attempt - 1), 3_600_000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface MailSenderOptions {
  store: MailOutboxStore;
  /** `smtp://[user:password@]host[:port]` or `smtps://…` (nodemailer URL options such as `?tls.rejectUnauthorized=false` apply). */
  smtpUrl: string;
  /** The From header. */
  from: string;
  /** The key the bodies were sealed with (`mailSealKey(secretKey)`). */
  sealKey: Buffer;
  clock?: Clock;
  /** How often the outbox is looked at for due mail besides wake-ups (default 1 s; each look is one cheap read). */
  pollIntervalMs?: number;
  /** The delay after a failed attempt (default `defaultRetryDelayMs`). */
  retryDelayMs?: (attempt: number) => number;
  /** A claim lasts this long: longer than one SMTP exchange may take (default 2 min). */
  leaseMs?: number;
  /** Mail queued longer ago than this is dropped instead of retried (default 24 h, the longest a link lives). */
  maxAgeMs?: number;
  /** Mails claimed per round (default 10). */
  batchSize?: number;
  /** SMTP timeouts (connect, greeting, idle socket), in ms (default 10 s, 10 s, 30 s). */
  timeouts?: { connectionMs?: number; greetingMs?: number; socketMs?: number };
  log?: MailSenderLog;
}

/** A running sender. */
export interface MailSender {
  /** Looks at the outbox now (a request just queued mail). */
  wake(): void;
  /** Runs one round now and resolves when it is done: sends what is due. For tests and shutdown. */
  flush(): Promise<void>;
  /** Stops polling, lets the round in progress finish, closes the SMTP transport. */
  stop(): Promise<void>;
}

const silent: MailSenderLog = { info() {}, warn() {}, error() {} };

/** Starts delivering the outbox; see the module note. */
export function startMailSender(options: MailSenderOptions): MailSender {
  const { store } = options;
  const clock = options.clock ?? systemClock;
  const log = options.log ?? silent;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const retryDelayMs = options.retryDelayMs ?? defaultRetryDelayMs;
  const leaseMs = options.leaseMs ?? 120_000;
  const maxAgeMs = options.maxAgeMs ?? 24 * 3_600_000;
  const batchSize = options.batchSize ?? 10;
  // The timeouts bound every wait on a dead or silent server (options in the URL's query win).
  const transport = createTransport(
    {
      url: options.smtpUrl,
      connectionTimeout: options.timeouts?.connectionMs ?? 10_000,
      greetingTimeout: options.timeouts?.greetingMs ?? 10_000,
      socketTimeout: options.timeouts?.socketMs ?? 30_000,
    },
    { from: options.from },
  );

  const deliver = async (mail: OutboxMail): Promise<void> => {
    const now = clock();
    const where = { mail: mail.id, attempt: mail.attempts };
    if (now - mail.createdAt > maxAgeMs) {
      await store.dropMail(mail.id, mail.claim);
      log.error(where, 'mail: dropped a mail queued too long ago to be of use');
      return;
    }
    let opened: OutboxMail;
    try {
      opened = openMail(options.sealKey, mail);
    } catch {
      await store.dropMail(mail.id, mail.claim);
      log.error(where, 'mail: dropped a mail sealed under another secret key (PORTCULLIS_SECRET_KEY changed while it was queued)');
      return;
    }
    try {
      await transport.sendMail({
        // One mailbox as an object: nodemailer does not parse it as an address list.
        to: { name: '', address: opened.to },
        subject: opened.subject,
        text: opened.text,
        html: opened.html,
        // RFC 3834 §5: automatic mail, so auto-responders stay quiet.
        headers: { 'auto-submitted': 'auto-generated' },
      });
    } catch (error) {
      const failure = error as { message?: string; code?: string; responseCode?: number; permanent?: boolean };
      const reason = `${failure.code ?? 'error'}${failure.responseCode ? ` ${failure.responseCode}` : ''}: ${failure.message ?? String(error)}`;
      if (failure.permanent === true) {
        await store.dropMail(mail.id, mail.claim);
        log.error({ ...where, reason }, 'mail: the SMTP server refused a mail for good; dropped');
        return;
      }
      const at = clock() + retryDelayMs(mail.attempts);
      await store.retryMailLater(mail.id, mail.claim, at, reason);
      log.warn({ ...where, reason, retryAt: new Date(at).toISOString() }, 'mail: sending failed; will retry');
      return;
    }
    // Accepted by the server: the mail (and the token in its body) leaves the database.
    await store.markMailSent(mail.id, mail.claim);
    log.info(where, 'mail: sent');
  };

  /** Sends what is due, a batch at a time, until nothing is due. */
  const round = async (): Promise<void> => {
    for (;;) {
      if (stopped || !(await store.hasDueMail(clock()))) return;
      const batch = await store.claimMail(clock(), leaseMs, batchSize);
      // One at a time: a slow SMTP server holds one connection, not a burst of them. A stop
      // between two mails leaves the rest claimed: their lease runs out and they are sent later.
      for (const mail of batch) {
        if (stopped) return;
        await deliver(mail);
      }
      if (batch.length < batchSize) return;
    }
  };

  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = (): Promise<void> => {
    if (running) {
      // A wake-up during a round: one more round after it, so nothing queued meanwhile waits a poll.
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await round();
        } catch (error) {
          // The database is away (or a bug): the next round tries again; the mail stays queued.
          log.warn({ err: error }, 'mail: could not read the outbox; will retry');
        }
      } while (again && !stopped);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void run().finally(schedule), pollIntervalMs);
    timer.unref();
  };
  const unwatch = store.watchMail(() => {
    if (!stopped) void run();
  });
  schedule();
  void run();

  return {
    wake: () => void run(),
    flush: () => run(),
    async stop() {
      stopped = true;
      unwatch();
      if (timer) clearTimeout(timer);
      await running;
      transport.close();
    },
  };
}
