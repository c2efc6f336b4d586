/**
 * Cross-instance cache invalidation on PostgreSQL (SPEC §2.2: disabling a user or revoking a
 * session on one instance takes effect on every other within 1 second). Every write that
 * changes auth state is announced with `NOTIFY` on one channel; one dedicated connection per
 * process `LISTEN`s and hands the other processes' changes to the store's subscribers.
 *
 * Notifications sent while the listener is disconnected are lost for good, so after every
 * (re)connection it reports `{ kind: 'all' }`; and while it is not listening, `live` is false
 * and callers must not trust anything they cached (the store then reports "another process
 * may have written" on every check, which turns the auth cache off until the feed is back).
 * A heartbeat on the listening connection notices a silently dead link (no FIN, no RST) in
 * a few seconds instead of TCP keepalive's minutes.
 *
 * @example
 * const feed = createPgChangeFeed({ pool, clientConfig });
 * const stop = feed.watch((change) => cache.drop(change));
 * feed.publish({ kind: 'user', id });
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { StoreChange } from '../core/store.ts';

/** The channel every instance on one database shares (channels are per database). */
export const CHANGES_CHANNEL = 'portcullis_changes';

/** How often the listening connection proves it is alive, and how long it may take. */
export const HEARTBEAT_MS = 2_000;
const HEARTBEAT_TIMEOUT_MS = 2_000;
/** Reconnection backoff: doubles from the first value up to the second. */
const RECONNECT_MS = [100, 1_000] as const;
/** PostgreSQL refuses payloads of 8000 bytes or more; stay well below. */
const MAX_PAYLOAD = 7_000;
/** A failed NOTIFY is retried this many times, this far apart, then given up. */
const PUBLISH_RETRIES = 5;
const PUBLISH_RETRY_MS = 200;

/** The change stream of one database, as seen by one process. */
export interface ChangeFeed {
  /** Tells every other process on the database about a change this process made. */
  publish(change: StoreChange): void;
  /** Calls `listener` with other processes' changes; starts listening on first use. Returns the stop function. */
  watch(listener: (change: StoreChange) => void): () => void;
  /** True while the listening connection is up and subscribed: nothing can have been missed. */
  readonly live: boolean;
  close(): Promise<void>;
}

interface Payload {
  /** The publishing process, so it can ignore its own notifications. */
  o: string;
  c: StoreChange[];
}

const isChange = (value: unknown): value is StoreChange => {
  const v = value as { kind?: unknown; id?: unknown } | null;
  if (v === null || typeof v !== 'object') return false;
  if (v.kind === 'all' || v.kind === 'keys') return true;
  return (v.kind === 'user' || v.kind === 'session' || v.kind === 'client' || v.kind === 'service_token') && typeof v.id === 'string';
};

/** Packs changes into as few NOTIFY payloads as fit under PostgreSQL's size limit. */
export function packChanges(origin: string, changes: readonly StoreChange[]): string[] {
  const payloads: string[] = [];
  let batch: StoreChange[] = [];
  let size = 0;
  for (const change of changes) {
    const length = JSON.stringify(change).length + 1;
    if (batch.length > 0 && size + length > MAX_PAYLOAD) {
      payloads.push(JSON.stringify({ o: origin, c: batch } satisfies Payload));
      batch = [];
      size = 0;
    }
    batch.push(change);
    size += length;
  }
  if (batch.length > 0) payloads.push(JSON.stringify({ o: origin, c: batch } satisfies Payload));
  return payloads;
}

export function createPgChangeFeed(options: { pool: pg.Pool; clientConfig: pg.ClientConfig }): ChangeFeed {
  const { pool, clientConfig } = options;
  const origin = randomUUID();
  const listeners = new Set<(change: StoreChange) => void>();
  let queue: StoreChange[] = [];
  let flushScheduled = false;
  let client: pg.Client | undefined;
  let live = false;
  let started = false;
  let closed = false;
  let backoff: number = RECONNECT_MS[0];
  let reconnectTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;

  const deliver = (change: StoreChange): void => {
    for (const listener of listeners) listener(change);
  };

  const send = (payload: string, attempt: number): void => {
    pool.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]).catch(() => {
      // The write itself committed; other instances must still hear of it. If the database
      // stays away, their listeners drop too and report {kind:'all'} when they reconnect.
      if (closed || attempt >= PUBLISH_RETRIES) return;
      setTimeout(() => send(payload, attempt + 1), PUBLISH_RETRY_MS).unref();
    });
  };

  const flush = (): void => {
    flushScheduled = false;
    const changes = queue;
    queue = [];
    if (closed || changes.length === 0) return;
    // {kind:'all'} covers everything else in the batch.
    const all = changes.find((c) => c.kind === 'all');
    for (const payload of packChanges(origin, all ? [all] : changes)) send(payload, 0);
  };

  const scheduleReconnect = (): void => {
    if (closed || reconnectTimer) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      void connect();
    }, backoff);
    reconnectTimer.unref();
    backoff = Math.min(backoff * 2, RECONNECT_MS[1]);
  };

  const dropped = new WeakSet<pg.Client>();
  const drop = (c: pg.Client): void => {
    // 'error' and 'end' both arrive for one failure; a late event of an old client must not
    // start a second listener.
    if (dropped.has(c)) return;
    dropped.add(c);
    if (client === c) {
      client = undefined;
      live = false;
      clearInterval(heartbeatTimer);
    }
    // end() on a broken socket may never call back; destroy the stream instead.
    (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    c.end().catch(() => {});
    if (client === undefined) scheduleReconnect();
  };

  const onNotification = (message: pg.Notification): void => {
    if (message.channel !== CHANGES_CHANNEL || !message.payload) return;
    let payload: Payload;
    try {
      payload = JSON.parse(message.payload) as Payload;
    } catch {
      return;
    }
    // This process already told its own subscribers.
    if (payload.o === origin || !Array.isArray(payload.c)) return;
    for (const change of payload.c) if (isChange(change)) deliver(change);
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client(clientConfig);
    c.on('error', () => drop(c));
    c.on('end', () => drop(c));
    c.on('notification', onNotification);
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch {
      drop(c);
      return;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    live = true;
    backoff = RECONNECT_MS[0];
    heartbeatTimer = setInterval(() => {
      const timeout = setTimeout(() => drop(c), HEARTBEAT_TIMEOUT_MS).unref();
      c.query('SELECT 1').then(
        () => clearTimeout(timeout),
        () => {
          clearTimeout(timeout);
          drop(c);
        },
      );
    }, HEARTBEAT_MS);
    heartbeatTimer.unref();
    // Whatever was announced while nobody listened is lost: drop every cached state.
    deliver({ kind: 'all' });
  };

  return {
    publish(change) {
      if (closed) return;
      queue.push(change);
      if (!flushScheduled) {
        flushScheduled = true;
        // One NOTIFY per turn of the event loop, however many changes it made.
        setImmediate(flush);
      }
    },
    watch(listener) {
      listeners.add(listener);
      if (!started) {
        started = true;
        void connect();
      }
      return () => listeners.delete(listener);
    },
    get live() {
      return live;
    },
    async close() {
      if (closed) return;
      flush();
      closed = true;
      clearTimeout(reconnectTimer);
      clearInterval(heartbeatTimer);
      listeners.clear();
      const c = client;
      client = undefined;
      live = false;
      if (c) await c.end().catch(() => {});
    },
  };
}
