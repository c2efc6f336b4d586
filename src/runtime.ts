/**
 * Opens everything a configured Portcullis needs — the store (migrated), the secret key and
 * the core service — from a `Config`. Shared by `serve` and the CLI's user commands so both
 * see the same settings.
 *
 * @example
 * const { service, close } = await openRuntime(loadConfig());
 */
import type { AuthService } from './core/auth-service.ts';
import { createAuthService } from './core/auth-service.ts';
import { eventPruneStep, revokedServiceTokenPruneStep, securityEventPruneStep, sessionPruneSteps, webhookPruneStep, type PruneStep } from './core/housekeeping.ts';
import { mfaTokenPruneStep } from './core/mfa-grant.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { eventFrom } from './core/events.ts';
import type { Config } from './config.ts';
import type { AuthObserver } from './core/observer.ts';
import { openKeyRing, type KeyRing } from './core/key-ring.ts';
import { isAsymmetric } from './core/signing-keys.ts';
import { mailSealKey } from './core/mail-seal.ts';
import { oneTimeTokenPruneStep } from './core/one-time-token.ts';
import type { MailSender, MailSenderOptions } from './mail-sender.ts';
import { resolveSecretKey } from './secret-key.ts';
import { createDatabaseLoginLimiter, openStore, type KyselyStore } from './store/index.ts';
import { createSigningKeyStore } from './store/signing-keys.ts';
import { createWebhookStore } from './store/webhook-store.ts';
import { createWebhooks, type Webhooks } from './core/webhooks.ts';
import { createSecurityEventFeed, type SecurityEventFeed } from './core/security-event-feed.ts';
import { createSecurityEventStore, openSecurityEventKeyRing } from './store/security-event-store.ts';

/**
 * An opened, configured Portcullis: its settings, store and service, and `close()` for all of them.
 *
 * @example
 * const runtime = await openRuntime(loadConfig()); // … then: await runtime.close();
 */
export interface Runtime {
  config: Readonly<Config>;
  store: KyselyStore;
  service: AuthService;
  /** The rotating signing keys, when tokens are signed with stored key pairs (`portcullis keys`); undefined under HS256. */
  keyRing: KeyRing | undefined;
  /** What the migrations run by this process had to tell the operator (see `Store.migrate`). */
  migrationNotices: readonly string[];
  /** Webhooks (SPEC §9.3): add, list, remove, test, and this process's delivery worker. */
  webhooks: Webhooks;
  /**
   * The housekeeping steps of one prune pass (core/housekeeping.ts): ended sessions, expired
   * refresh tokens, old audit events, done webhook messages, unacknowledged SETs past their retention.
   */
  pruneSteps(): PruneStep[];
  /**
   * Opens the security event feed (SPEC §8) — its SET signing keys, made on first start — for
   * `buildApp({ securityEvents })`; the same feed on every call. `serve` opens it; CLI commands
   * need not (the store queues SETs by itself).
   */
  openSecurityEventFeed(): Promise<SecurityEventFeed>;
  /**
   * Starts delivering the outbox (SPEC §10, `src/mail-sender.ts`) with the configured SMTP
   * server; undefined when mail is not configured. `serve` runs one per process.
   */
  startMailSender(options?: Partial<Omit<MailSenderOptions, 'store' | 'smtpUrl' | 'from' | 'sealKey'>>): Promise<MailSender | undefined>;
  close(): Promise<void>;
}

/**
 * Opens what a configured Portcullis needs from a `Config`: the store (migrated), the secret key (generated beside the SQLite file when allowed), the signing keys, the limiter and the service — the same setup `portcullis serve` uses.
 *
 * @example
 * const { service, close } = await openRuntime(loadConfig());
 * const app = await buildApp({ service });
 */
export async function openRuntime(
  config: Readonly<Config>,
  options: { clock?: Clock; migrate?: boolean; observer?: Partial<AuthObserver> | undefined } = {},
): Promise<Runtime> {
  const secretKey = resolveSecretKey(config);
  const store = await openStore(config.databaseUrl, options.clock ? { clock: options.clock } : {});
  let keyRing: KeyRing | undefined;
  // The client connects in the background: a Redis that is down at start-up gives 503s on
  // login until it answers, as a database outage does (SPEC §4), instead of refusing to start.
  // Loaded only when configured: ioredis costs ~30 ms of start-up.
  const redisLimiter = config.redisUrl ? await import('./store/redis-login-limiter.ts') : undefined;
  const redis = config.redisUrl ? redisLimiter?.createRedisClient(config.redisUrl) : undefined;
  const closeRedis = async (): Promise<void> => {
    // QUIT lets pending commands finish; when Redis is away it fails (bounded), so just drop the socket.
    await redis?.quit().catch(() => redis.disconnect());
  };
  try {
    const migrationNotices = options.migrate !== false ? await store.migrate() : [];
    if (isAsymmetric(config.tokenAlgorithm)) {
      // Creates the first key pair on first start (once, however many instances race) and
      // re-reads the keys every second, so a rotation by the CLI or another instance lands.
      keyRing = await openKeyRing({
        store: createSigningKeyStore(store),
        algorithm: config.tokenAlgorithm,
        secretKey,
        accessTokenTtl: config.accessTokenTtl,
        ...(options.clock ? { clock: options.clock } : {}),
        // SPEC §9.2: a rotation at start-up (a changed algorithm or secret key) is recorded
        // like one by `portcullis keys rotate`: the key ids only.
        onAutomaticRotation: ({ current, previous, reason }) =>
          store.appendEvents([
            eventFrom('key.rotated', (options.clock ?? systemClock)(), undefined, { detail: { kid: current.kid, alg: current.alg, previous_kid: previous.kid, reason } }),
          ]),
      });
      keyRing.start();
    }
    const limits = {
      maxFailures: config.loginMaxFailures,
      windowSeconds: config.loginWindow,
      addressMaxFailures: config.addressMaxFailures,
      addressMaxLogins: config.addressMaxLogins,
    };
    const service = createAuthService({
      store,
      secretKey,
      issuer: config.issuer,
      audience: config.audience,
      audiences: config.audiences,
      defaultClientId: config.defaultClientId,
      accessTokenTtl: config.accessTokenTtl,
      refreshTokenTtl: config.refreshTokenTtl,
      refreshReuseGrace: config.refreshReuseGrace,
      scopes: config.scopes,
      argon2: config.argon2,
      hashConcurrency: config.hashConcurrency,
      hashQueue: config.hashQueue,
      hashPerAddress: config.hashPerAddress,
      maxSessions: config.maxSessions,
      sessionCacheSize: config.sessionCacheSize,
      // SPEC §4: failed logins are counted in Redis when configured, else in the database, so
      // every instance on it agrees.
      limiter: redis && redisLimiter ? redisLimiter.createRedisLoginLimiter(redis, limits) : createDatabaseLoginLimiter(store, limits),
      keyRing,
      observer: options.observer,
      // SPEC §10: registration, verification and reset, each off until configured.
      accounts: {
        registration: config.registration,
        mail: config.mail ? { publicUrl: config.mail.publicUrl } : undefined,
        requireVerifiedEmail: config.requireVerifiedEmail,
        addressMaxRegistrations: config.addressMaxRegistrations,
        addressMaxResetRequests: config.addressMaxResetRequests,
        // The database counter sweeps by its callers' window: the accounts limits share the login window.
        windowSeconds: config.loginWindow,
      },
      clients: config.clients,
      introspectionMaxInactive: config.introspectionMaxInactive,
      ...(options.clock ? { clock: options.clock } : {}),
    });
    const ring = keyRing;
    const webhookStore = createWebhookStore(store);
    const securityEventStore = createSecurityEventStore(store);
    let securityEventFeed: Promise<SecurityEventFeed> | undefined;
    let setKeyRing: KeyRing | undefined;
    return {
      config,
      store,
      service,
      keyRing,
      migrationNotices,
      webhooks: createWebhooks({ store: webhookStore, secretKey, allowPrivate: config.webhookAllowPrivate, clock: options.clock }),
      pruneSteps: () => [
        ...sessionPruneSteps(store, { accessTokenTtl: config.accessTokenTtl, refreshTokenTtl: config.refreshTokenTtl, ...(options.clock ? { clock: options.clock } : {}) }),
        eventPruneStep(store, { retentionDays: config.eventRetention, ...(options.clock ? { clock: options.clock } : {}) }),
        mfaTokenPruneStep(store, options.clock ? { clock: options.clock } : {}),
        oneTimeTokenPruneStep(store, options.clock ? { clock: options.clock } : {}),
        webhookPruneStep(webhookStore, options.clock ? { clock: options.clock } : {}),
        revokedServiceTokenPruneStep(store, options.clock),
        securityEventPruneStep(securityEventStore, { accessTokenTtl: config.accessTokenTtl, clock: options.clock }),
      ],
      openSecurityEventFeed: () =>
        (securityEventFeed ??= (async () => {
          setKeyRing = await openSecurityEventKeyRing(store, { secretKey, accessTokenTtl: config.accessTokenTtl, clock: options.clock });
          return createSecurityEventFeed({ store: securityEventStore, keyRing: setKeyRing });
        })()),
      startMailSender: async (senderOptions = {}) => {
        if (!config.mail) return undefined;
        // Loaded only when mail is configured: nodemailer costs start-up time.
        const { startMailSender } = await import('./mail-sender.ts');
        return startMailSender({
          ...(options.clock ? { clock: options.clock } : {}),
          ...senderOptions,
          store,
          smtpUrl: config.mail.smtpUrl,
          from: config.mail.from,
          sealKey: mailSealKey(secretKey),
        });
      },
      close: async () => {
        ring?.close();
        await securityEventFeed?.then((feed) => feed.close(), () => undefined);
        setKeyRing?.close();
        await closeRedis();
        await store.close();
      },
    };
  } catch (error) {
    keyRing?.close();
    await closeRedis();
    await store.close();
    throw error;
  }
}
