/**
 * The one call that turns a database URL into a ready Store.
 *
 * @example
 * const store = await openStore('sqlite:./data/portcullis.db'); await store.migrate();
 */
import { openDatabase } from './database.ts';
import { createKyselyStore, type KyselyStore, type KyselyStoreOptions } from './kysely-store.ts';

/**
 * Opens the database named by a URL (`sqlite:PATH`, `sqlite::memory:` or `postgres://…`) as a
 * Store; call `migrate()` before first use and `close()` when done. `options.clock` stamps the
 * store's own writes (pass the service's clock).
 *
 * @example
 * const store = await openStore('sqlite:./data/portcullis.db'); await store.migrate();
 */
export async function openStore(url: string, options: KyselyStoreOptions = {}): Promise<KyselyStore> {
  return createKyselyStore(await openDatabase(url), options);
}
