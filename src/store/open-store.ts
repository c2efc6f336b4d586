/**
 * The one call that turns a database URL into a ready Store.
 *
 * @example
 * const store = await openStore('sqlite:./data/portcullis.db'); await store.migrate();
 */
import { openDatabase } from './database.ts';
import { createKyselyStore, type KyselyStore } from './kysely-store.ts';

/**
 * Opens the database named by a URL (`sqlite:PATH`, `sqlite::memory:` or `postgres://…`) as a
 * Store; call `migrate()` before first use and `close()` when done.
 *
 * @example
 * const store = await openStore('sqlite:./data/portcullis.db'); await store.migrate();
 */
export async function openStore(url: string): Promise<KyselyStore> {
  return createKyselyStore(await openDatabase(url));
}
