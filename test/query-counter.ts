/**
 * Counts the work a store does, for tests that assert bounded work (never wall-clock time):
 * a Kysely plugin on the store's own connection records each query built (with the tables it
 * names) and each statement executed (with the rows it returned). A query compiled once and
 * executed many times shows as one build and many executions.
 *
 * @example
 * const counted = countQueries(database);
 * const store = createKyselyStore(counted.database);
 * await store.getAuthState('s1');
 * assert.equal(counted.executed, 1);
 */
import type { KyselyPlugin, OperationNode } from 'kysely';
import type { Database } from '../src/store/database.ts';

export interface QueryCounts {
  /** The database to build a store on: the same connection, with the plugin. */
  readonly database: Database;
  /** Queries built and compiled (a query compiled once counts once). */
  built: number;
  /** Statements executed. */
  executed: number;
  /** The tables each built query names, in order. */
  readonly tables: string[][];
  /** The rows each executed statement returned, in order. */
  readonly rows: number[];
  reset(): void;
}

/** The names of the tables an operation tree refers to. */
function tablesOf(node: unknown, found = new Set<string>()): Set<string> {
  if (node === null || typeof node !== 'object') return found;
  if (Array.isArray(node)) {
    for (const child of node) tablesOf(child, found);
    return found;
  }
  const record = node as Record<string, unknown>;
  if (record.kind === 'TableNode') {
    const name = (record.table as { identifier?: { name?: unknown } } | undefined)?.identifier?.name;
    if (typeof name === 'string') found.add(name);
  }
  for (const value of Object.values(record)) tablesOf(value, found);
  return found;
}

/**
 * Wraps an open database so that the queries of a store built on it are counted.
 *
 * @example
 * const counted = countQueries(await openDatabase('sqlite::memory:'));
 */
export function countQueries(database: Database): QueryCounts {
  const counts: QueryCounts = {
    database: undefined as unknown as Database,
    built: 0,
    executed: 0,
    tables: [],
    rows: [],
    reset() {
      counts.built = 0;
      counts.executed = 0;
      counts.tables.length = 0;
      counts.rows.length = 0;
    },
  };
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      counts.built++;
      counts.tables.push([...tablesOf(node as OperationNode)].sort());
      return node;
    },
    async transformResult({ result }) {
      counts.executed++;
      counts.rows.push(result.rows.length);
      return result;
    },
  };
  (counts as { database: Database }).database = { ...database, db: database.db.withPlugin(plugin) };
  return counts;
}
