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
import type { Clock } from './core/clock.ts';
import type { Config } from './core/config.ts';
import { resolveSecretKey } from './secret-key.ts';
import { openStore, type KyselyStore } from './store/index.ts';

export interface Runtime {
  config: Readonly<Config>;
  store: KyselyStore;
  service: AuthService;
  close(): Promise<void>;
}

export async function openRuntime(config: Readonly<Config>, options: { clock?: Clock; migrate?: boolean } = {}): Promise<Runtime> {
  const secretKey = resolveSecretKey(config);
  const store = await openStore(config.databaseUrl);
  try {
    if (options.migrate !== false) await store.migrate();
    const service = createAuthService({
      store,
      secretKey,
      issuer: config.issuer,
      accessTokenTtl: config.accessTokenTtl,
      refreshTokenTtl: config.refreshTokenTtl,
      refreshReuseGrace: config.refreshReuseGrace,
      scopes: config.scopes,
      argon2: config.argon2,
      hashConcurrency: config.hashConcurrency,
      hashQueue: config.hashQueue,
      ...(options.clock ? { clock: options.clock } : {}),
    });
    return { config, store, service, close: () => store.close() };
  } catch (error) {
    await store.close();
    throw error;
  }
}
