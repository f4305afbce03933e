import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { adminQuery, createTestDatabase, databaseUrl, uniqueDatabaseName } from '@orders/testkit';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  changeOrderStatus,
  createDb,
  type Db,
  DEFAULT_MIGRATIONS_DIR,
  insertOrderWithEvent,
  type LogPosition,
  migrateToLatest,
  outboxBacklog,
  type PartitionRead,
  readOutboxLog,
} from '../src/index.js';

// The log read against real transactions: what it returns, when, and in which order. Each test works
// on partitions it reads itself, with positions kept in memory (no relay, no cursor writes).

const tdb = await createTestDatabase();
afterAll(() => tdb.drop());

const PARTITIONS = Array.from({ length: 16 }, (_, i) => i);

/** A reader over every partition, from the position at which it is created. */
async function reader(db: Db, limit = 100) {
  const { rows } = await sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`.execute(db);
  const start = rows[0]?.s ?? '';
  const positions = new Map<number, LogPosition>(
    PARTITIONS.map((p) => [p, { snapshot: start, target: null, afterXid: null, afterSeq: null }]),
  );
  return {
    /** One read of every partition; positions move as if every row were acknowledged. */
    async read(): Promise<PartitionRead[]> {
      const reads = await readOutboxLog(
        db,
        PARTITIONS.map((partition) => ({ partition, from: positions.get(partition) as LogPosition })),
        limit,
      );
      for (const r of reads) positions.set(r.partition, r.next);
      return reads;
    },
    /** Reads until a read returns nothing; the ids in the order read. */
    async drain(): Promise<string[]> {
      const ids: string[] = [];
      for (;;) {
        const got = (await this.read()).flatMap((r) => r.events.map((e) => e.id));
        if (got.length === 0) return ids;
        ids.push(...got);
      }
    },
  };
}

async function insertRows(client: pg.ClientBase | Db, n: number, aggregate?: string): Promise<string[]> {
  const text = `
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    SELECT gen_random_uuid(), 'order', coalesce($2, gen_random_uuid()::text), 'order_created', 'orders.order_created', '{}'
    FROM generate_series(1, $1::int) RETURNING id`;
  if (client instanceof pg.Client || client instanceof pg.Pool) {
    return (await client.query<{ id: string }>(text, [n, aggregate ?? null])).rows.map((r) => r.id);
  }
  const { rows } = await sql<{ id: string }>`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    SELECT gen_random_uuid(), 'order', coalesce(${aggregate ?? null}, gen_random_uuid()::text), 'order_created',
           'orders.order_created', '{}'
    FROM generate_series(1, ${n}::int) RETURNING id`.execute(client as Db);
  return rows.map((r) => r.id);
}

async function client(url = tdb.url): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/**
 * Runs `body` in a transaction begun on a connection of its own to the test database; the body ends
 * the transaction, and the connection is closed after, whatever happened.
 */
async function inTransaction<T>(body: (open: pg.Client) => Promise<T>): Promise<T> {
  const open = await client();
  try {
    await open.query('BEGIN');
    return await body(open);
  } finally {
    await open.end();
  }
}

describe('the outbox log read', () => {
  it('returns a row once its transaction commits, never before, never twice', async () => {
    const r = await reader(tdb.db);
    await inTransaction(async (open) => {
      const late = await insertRows(open, 3);
      const early = await insertRows(tdb.db, 2);
      // The open transaction's rows exist but are not committed: only the committed ones come back.
      expect((await r.drain()).sort()).toEqual([...early].sort());
      expect(await r.drain()).toEqual([]);
      await open.query('COMMIT');
      // It committed after the rows read before: it comes next, and once.
      expect((await r.drain()).sort()).toEqual([...late].sort());
      expect(await r.drain()).toEqual([]);
    });
  });

  it('a transaction that rolls back leaves nothing to read and holds nothing back', async () => {
    const r = await reader(tdb.db);
    await inTransaction(async (open) => {
      await insertRows(open, 2);
      const committed = await insertRows(tdb.db, 2);
      await open.query('ROLLBACK');
      expect((await r.drain()).sort()).toEqual([...committed].sort());
    });
  });

  it('a long write transaction in another database of the server delays no row of this one', async () => {
    const other = uniqueDatabaseName('orders_other');
    await adminQuery(tdb.adminUrl, [`CREATE DATABASE "${other}"`]);
    const elsewhere = await client(databaseUrl(tdb.adminUrl, other));
    try {
      // A write transaction elsewhere: its xid is in every snapshot's in-progress list (xids are
      // cluster-wide), the case that stalls an xmin-watermark outbox until it ends.
      await elsewhere.query('BEGIN');
      await elsewhere.query('CREATE TABLE held (n int)');
      await elsewhere.query('INSERT INTO held VALUES (1)');
      const r = await reader(tdb.db);
      for (let round = 0; round < 3; round++) {
        const ids = await insertRows(tdb.db, 5);
        const started = performance.now();
        expect((await r.drain()).sort()).toEqual([...ids].sort());
        expect(performance.now() - started).toBeLessThan(2000);
      }
      await elsewhere.query('ROLLBACK');
    } finally {
      await elsewhere.end();
      await adminQuery(tdb.adminUrl, [`DROP DATABASE IF EXISTS "${other}" WITH (FORCE)`]);
    }
  });

  it('a long transaction of this database delays only its own rows', async () => {
    const r = await reader(tdb.db);
    await inTransaction(async (open) => {
      const held = await insertRows(open, 1);
      const around: string[] = [];
      for (let i = 0; i < 5; i++) {
        const ids = await insertRows(tdb.db, 4);
        around.push(...ids);
        expect((await r.drain()).sort()).toEqual([...ids].sort());
      }
      await open.query('COMMIT');
      expect(await r.drain()).toEqual(held);
    });
  });

  it('reads a window in batches as one fixed set in (xid, seq) order; later commits wait for the next', async () => {
    const r = await reader(tdb.db, 3);
    // One transaction, one aggregate: one partition, ten rows in seq order.
    const aggregate = `agg-${crypto.randomUUID()}`;
    const first = await insertRows(tdb.db, 10, aggregate);
    const batch1 = (await r.read()).flatMap((p) => p.events.map((e) => e.id));
    expect(batch1).toEqual(first.slice(0, 3));
    // Committed to the same partition while its window is being read: not part of that window.
    const later = await insertRows(tdb.db, 2, aggregate);
    const rest: string[] = [];
    for (let i = 0; i < 3; i++) rest.push(...(await r.read()).flatMap((p) => p.events.map((e) => e.id)));
    expect(rest).toEqual(first.slice(3));
    expect(await r.drain()).toEqual(later);
  });

  it("an order's events come in commit order: status changes serialize on the order's row", async () => {
    // Why (xid, seq) is each order's commit order for the API's writes: a status change updates the
    // order row with a compare-and-set on the status, so two changes of one order cannot both commit
    // from the same status. One that waited for the other's row lock finds the status changed and
    // retries in a new transaction, whose xid is assigned after the first one committed; the create's
    // xid precedes every change's, which can only see the order after it committed. Within one
    // transaction, rows are in seq (insert) order. Other writers keep this by taking the aggregate's
    // row lock (or pg_advisory_xact_lock on it) before their first write in each transaction.
    const r = await reader(tdb.db, 1000);
    const orders = Array.from({ length: 40 }, () => crypto.randomUUID());
    const now = new Date();
    await Promise.all(
      orders.map((id) =>
        insertOrderWithEvent(
          tdb.db,
          {
            id,
            customer_id: crypto.randomUUID(),
            total_amount: '1.00',
            metadata: {},
            created_at: now,
            items: [],
          },
          event(id, 'order_created', 'draft'),
        ),
      ),
    );
    // Racing changes of the same orders: placed, then shipped or cancelled, from several connections.
    const transitions: Record<string, string[]> = {
      placed: ['draft'],
      cancelled: ['draft', 'placed'],
      shipped: ['placed'],
    };
    await Promise.all(
      orders.flatMap((id) =>
        (['placed', 'cancelled', 'shipped', 'placed'] as const).map((to) =>
          changeOrderStatus(
            tdb.db,
            id,
            to,
            new Date(),
            (from) => transitions[to]?.includes(from) ?? false,
            (from) => event(id, `order_${to}`, from, to),
          ),
        ),
      ),
    );
    const read = await r.drain();
    const { rows } = await sql<{ id: string; aggregate_id: string; payload: { from: string; to: string } }>`
      SELECT id, aggregate_id, payload FROM outbox WHERE aggregate_id = ANY(${orders}::text[])`.execute(
      tdb.db,
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const order of orders) {
      const chain = read.map((id) => byId.get(id)).filter((row) => row?.aggregate_id === order);
      // Each event starts from the status the previous one left: the stream order is the commit order.
      for (let i = 1; i < chain.length; i++) expect(chain[i]?.payload.from).toBe(chain[i - 1]?.payload.to);
    }
  });

  it('the backlog counts the row of a transaction still open at the target of a cursor stopped inside a window', async () => {
    const aggregate = `agg-${crypto.randomUUID()}`;
    const snap = async () =>
      (await sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`.execute(tdb.db)).rows[0]?.s ?? '';
    const s0 = await snap();
    await inTransaction(async (late) => {
      await late.query('SELECT pg_current_xact_id()'); // T: started after s0, its xid below U's
      const [u] = await insertRows(tdb.db, 1, aggregate);
      const target = await snap(); // T is in progress here
      await insertRows(late, 1, aggregate);
      await late.query('COMMIT');
      const { rows } = await sql<{ partition: number; xid: string; seq: string }>`
          SELECT partition, xid::text, seq::text FROM outbox WHERE id = ${u}`.execute(tdb.db);
      const row = rows[0];
      if (!row) throw new Error('no row');
      // The cursor as a relay leaves it after a full batch that ended on U's row.
      await sql`
          INSERT INTO outbox_cursors (partition, acked_snapshot, acked_target, acked_after_xid, acked_after_seq, written_by)
          VALUES (${row.partition}, ${s0}::pg_snapshot, ${target}::pg_snapshot, ${row.xid}::xid8, ${row.seq}, 'test')`.execute(
        tdb.db,
      );
      const backlog = await outboxBacklog(tdb.db);
      expect(backlog.partitions.find((p) => p.partition === row.partition)?.pending).toBe(1);
    });
  });

  function event(orderId: string, type: string, from: string, to = from) {
    return {
      id: crypto.randomUUID(),
      aggregateType: 'order',
      aggregateId: orderId,
      eventType: type,
      subject: `orders.${type}`,
      payload: { from, to },
    };
  }
});

describe('migration 0012 with a backlog of the lease-and-mark model', () => {
  it('delivers the pending rows once, leaves the published ones, moves the dead ones aside', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    const name = uniqueDatabaseName('orders_upgrade');
    await adminQuery(tdb.adminUrl, [`CREATE DATABASE "${name}"`]);
    const url = databaseUrl(tdb.adminUrl, name);
    const db = createDb({ url, poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 });
    try {
      // The schema as it was before 0012, with rows in each state the old relay left.
      for (const file of await readdir(DEFAULT_MIGRATIONS_DIR)) {
        if (file < '0012') await cp(path.join(DEFAULT_MIGRATIONS_DIR, file), path.join(dir, file));
      }
      await migrateToLatest(db, { migrationsDir: dir });
      const { rows } = await sql<{ id: string; state: string }>`
        INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
        SELECT gen_random_uuid(), 'order', gen_random_uuid()::text, 'order_created', 'orders.order_created', '{}'
        FROM generate_series(1, 40)
        RETURNING id, 'new' AS state`.execute(db);
      const ids = rows.map((r) => r.id);
      const published = ids.slice(0, 10);
      const pending = ids.slice(10, 25);
      const claimed = ids.slice(25, 35);
      const dead = ids.slice(35);
      await sql`UPDATE outbox SET published_at = now() WHERE id = ANY(${published}::uuid[])`.execute(db);
      await sql`UPDATE outbox SET claims = 1, first_claimed_at = now() - interval '10 minutes'
                WHERE id = ANY(${claimed}::uuid[])`.execute(db);
      await sql`UPDATE outbox SET dead_at = now(), attempts = 10, last_error = 'too large'
                WHERE id = ANY(${dead}::uuid[])`.execute(db);

      // The upgrade on a busy server: other transactions commit while the migration's transaction,
      // its id already taken, is still running (a file of the test's own holds it open for a second
      // between 0011 and 0012). 0012's cursors alone then counted the pending rows as read (0013).
      await writeFile(
        path.join(dir, '0011_zz_busy_server.sql'),
        'SELECT pg_current_xact_id(); SELECT pg_sleep(1);',
      );
      for (const file of await readdir(DEFAULT_MIGRATIONS_DIR)) {
        if (file >= '0012') await cp(path.join(DEFAULT_MIGRATIONS_DIR, file), path.join(dir, file));
      }
      const migrating = migrateToLatest(db, { migrationsDir: dir });
      const others = createDb({
        url: tdb.url,
        poolSize: 1,
        connectTimeoutMs: 5000,
        statementTimeoutMs: 30_000,
      });
      let commits = 0;
      try {
        for (const started = Date.now(); Date.now() - started < 1500; commits++) {
          await sql`SELECT pg_current_xact_id()`.execute(others); // an id taken and committed
        }
      } finally {
        await others.destroy();
      }
      await migrating;
      expect(commits).toBeGreaterThan(10);

      // Dead rows are dead letters now, with their error.
      const { rows: letters } = await sql<{ id: string; last_error: string }>`
        SELECT id, last_error FROM outbox_dead`.execute(db);
      expect(letters.map((l) => l.id).sort()).toEqual([...dead].sort());
      expect(letters.every((l) => l.last_error === 'too large')).toBe(true);
      // Pending and claimed rows are ahead of the cursors; published ones are not.
      const backlog = await outboxBacklog(db);
      expect(backlog.pending).toBe(pending.length + claimed.length);
      expect(backlog.dead).toBe(dead.length);

      // Read from the cursors as a relay would: each waiting row once, the claimed ones flagged as
      // possibly published (they are looked up or re-sent with their ids), the others not.
      const { rows: cursors } = await sql<{
        partition: number;
        acked_snapshot: string;
        reach_snapshot: string | null;
      }>`SELECT partition, acked_snapshot::text, reach_snapshot::text FROM outbox_cursor`.execute(db);
      const reads = await readOutboxLog(
        db,
        cursors.map((c) => ({
          partition: c.partition,
          from: { snapshot: c.acked_snapshot, target: null, afterXid: null, afterSeq: null },
          reach:
            c.reach_snapshot === null
              ? null
              : { snapshot: c.reach_snapshot, target: null, afterXid: null, afterSeq: null },
        })),
        1000,
      );
      const events = reads.flatMap((r) => r.events);
      expect(events.map((e) => e.id).sort()).toEqual([...pending, ...claimed].sort());
      expect(events.filter((e) => claimed.includes(e.id)).every((e) => e.uncertain)).toBe(true);
    } finally {
      await db.destroy();
      await adminQuery(tdb.adminUrl, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
