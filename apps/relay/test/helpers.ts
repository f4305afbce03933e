import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Db, outboxBacklog } from '@orders/db';
import {
  adminQuery,
  type NatsServer,
  REPO_ROOT,
  type ServiceOnPort,
  startApiProcess,
  startServiceProcess,
  type TestDatabase,
} from '@orders/testkit';
import { sql } from 'kysely';
import { connect, type JsMsg, type NatsConnection } from 'nats';

export const RELAY_ENTRY = 'apps/relay/dist/main.js';
if (!existsSync(path.join(REPO_ROOT, RELAY_ENTRY))) {
  throw new Error(`${RELAY_ENTRY} is missing: run \`pnpm build\` first (pnpm test does)`);
}

export type RelayProcess = ServiceOnPort;

/** Starts the built relay as `node apps/relay/dist/main.js` (so a signal reaches the relay itself). */
export function startRelay(
  databaseUrl: string,
  nats: NatsServer,
  env: Record<string, string> = {},
): Promise<RelayProcess> {
  return startServiceProcess(
    RELAY_ENTRY,
    'RELAY_PORT',
    { DATABASE_URL: databaseUrl, NATS_URL: nats.url, ...env },
    /"msg":"relay started"/,
  );
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly msgId: string | undefined;
  readonly headers: Record<string, string>;
  readonly data: string;
}

/** A plain client for reading the stream back. */
export async function natsClient(nats: NatsServer): Promise<NatsConnection> {
  return connect({ servers: nats.url, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}

export async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  try {
    return (await jsm.streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

/** Every message in the stream, in stream order, read back with an ordered consumer (not from counters). */
export async function readStream(nc: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const total = await streamCount(nc, stream);
  if (total === 0) return [];
  const js = nc.jetstream();
  const consumer = await js.consumers.get(stream);
  const messages: StoredMessage[] = [];
  const iter = await consumer.consume({ max_messages: 1000 });
  for await (const m of iter as AsyncIterable<JsMsg>) {
    const headers: Record<string, string> = {};
    for (const [k, v] of m.headers ?? []) headers[k] = v[0] ?? '';
    messages.push({
      seq: m.seq,
      subject: m.subject,
      msgId: m.headers?.get('Nats-Msg-Id'),
      headers,
      data: m.string(),
    });
    if (messages.length >= total) break;
  }
  await iter.close();
  return messages;
}

/** Counts messages per Nats-Msg-Id: a map with any count but 1 is a lost or duplicated event. */
export function countsById(messages: readonly StoredMessage[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m.msgId ?? '<none>', (counts.get(m.msgId ?? '<none>') ?? 0) + 1);
  return counts;
}

/** Waits until every partition's cursor has read every outbox row (every publish acknowledged). */
export async function waitAllMarked(db: Db, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    "every outbox row read by its partition's cursor",
    async () => (await outboxBacklog(db)).pending === 0,
    timeoutMs,
    50,
  );
}

/** Inserts `n` outbox rows in one statement (one transaction), like a backlog left by the API. */
export async function insertBacklog(db: Db, n: number, options: { stream?: string } = {}): Promise<string[]> {
  const subject = `${options.stream ?? 'orders'}.order_created`;
  const { rows } = await sql<{ id: string }>`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    SELECT gen_random_uuid(), 'order', gen_random_uuid()::text, 'order_created', ${subject},
           jsonb_build_object('event_type', 'order_created', 'n', i, 'items', jsonb_build_array(jsonb_build_object('sku', 'SKU-' || i, 'qty', 1)))
    FROM generate_series(1, ${n}) AS i
    RETURNING id`.execute(db);
  return rows.map((r) => r.id);
}

/** Asserts every id appears exactly once in the stream and nothing else does. */
export function exactlyOnce(
  messages: readonly StoredMessage[],
  ids: readonly string[],
): { missing: string[]; duplicated: string[]; unexpected: string[] } {
  const counts = countsById(messages);
  const wanted = new Set(ids);
  return {
    missing: ids.filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected: [...counts.keys()].filter((id) => !wanted.has(id)),
  };
}

/** Starts the built relay with `env`, runs `until` with it, then stops it (SIGTERM) and waits for its exit. */
export async function withRelay<T>(
  databaseUrl: string,
  nats: NatsServer,
  env: Record<string, string>,
  until: (relay: RelayProcess) => Promise<T>,
): Promise<T> {
  const relay = await startRelay(databaseUrl, nats, env);
  try {
    return await until(relay);
  } finally {
    relay.kill('SIGTERM');
    await relay.exited;
  }
}

/** The status of the relay's GET /ready (200 ready, 503 not). */
export async function readyStatus(relay: RelayProcess): Promise<number> {
  return (await fetch(`${relay.base}/ready`)).status;
}

/** Cuts the relay off its database: no new connections to it, and the relay's open ones terminated. */
export async function closeDatabase(tdb: Pick<TestDatabase, 'adminUrl' | 'name'>): Promise<void> {
  await adminQuery(tdb.adminUrl, [
    `ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS false`,
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${tdb.name}' AND application_name LIKE '%relay%'`,
  ]);
}

/** Takes connections to the database again, after `closeDatabase`. */
export async function reopenDatabase(tdb: Pick<TestDatabase, 'adminUrl' | 'name'>): Promise<void> {
  await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
}

/** The built API as a process, for "orders through the API". */
export async function startApi(databaseUrl: string, env: Record<string, string> = {}) {
  const { proc, port } = await startApiProcess(databaseUrl, env);
  const base = `http://127.0.0.1:${port}`;
  return {
    proc,
    base,
    /** POSTs one order; returns the response status and body. */
    async createOrder(
      body: unknown = {
        customer_id: crypto.randomUUID(),
        items: [
          { sku: 'WIDGET-001', qty: 2, price: 19.99 },
          { sku: 'GADGET-002', qty: 1, price: 49.99 },
        ],
      },
    ) {
      const res = await fetch(`${base}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as ApiOrder };
    },
    async stop() {
      proc.kill('SIGTERM');
      await proc.exited;
    },
  };
}

export interface ApiOrder {
  id: string;
  customer_id: string;
  status: string;
  total_amount: number;
  created_at: string;
  items: { id: string; sku: string; qty: number; price: number; created_at: string }[];
}

/** Creates `n` orders with at most `concurrency` requests in flight. */
export async function createOrders(
  api: Awaited<ReturnType<typeof startApi>>,
  n: number,
  concurrency = 16,
): Promise<{ status: number; body: ApiOrder }[]> {
  const results: { status: number; body: ApiOrder }[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await api.createOrder();
      }
    }),
  );
  return results;
}

/**
 * Fixture "published": every row committed so far counts as read by its partition's cursor (a cursor
 * record at a snapshot taken now, for every partition). Rows inserted afterwards are pending. Only
 * with no relay running: a relay holding a partition writes its own cursor over this one.
 */
export async function markAllRead(db: Db): Promise<void> {
  await sql`
    INSERT INTO outbox_cursors (partition, acked_snapshot, written_by)
    SELECT partition, pg_current_snapshot(), 'test' FROM outbox_partitions`.execute(db);
}

/**
 * Fixture "dead": moves the rows to the dead letters (same id, the error kept), as the relay does
 * after RELAY_MAX_ATTEMPTS failures.
 */
export async function makeDead(
  db: Db,
  ids: readonly string[],
  options: { attempts?: number; error?: string } = {},
): Promise<void> {
  await sql`
    WITH gone AS (DELETE FROM outbox WHERE id = ANY(${ids}::uuid[]) RETURNING *)
    INSERT INTO outbox_dead (id, aggregate_type, aggregate_id, event_type, subject, payload, headers,
                             created_at, attempts, last_error)
    SELECT id, aggregate_type, aggregate_id, event_type, subject, payload, headers, created_at,
           ${options.attempts ?? 10}, ${options.error ?? 'boom'}
    FROM gone`.execute(db);
}

/** The ids among `ids` still in the log and not read by their partition's acknowledged cursor. */
export async function unreadIds(db: Db, ids: readonly string[]): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    SELECT o.id FROM outbox AS o JOIN outbox_cursor AS c USING (partition)
    WHERE o.id = ANY(${ids}::uuid[])
      AND NOT outbox_position_covers(o.xid, o.seq, c.acked_snapshot, c.acked_target, c.acked_after_xid, c.acked_after_seq)
    ORDER BY o.seq`.execute(db);
  return rows.map((r) => r.id);
}
