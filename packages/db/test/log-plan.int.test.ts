import { createTestDatabase } from '@orders/testkit';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogPosition, readOutboxLog } from '../src/index.js';
import { READ_LOG_SQL } from '../src/outbox-log.js';

// The log read must cost about one batch per partition whatever the planner believes about the outbox
// and however old a transaction is still open. The dangerous case: statistics gathered when nothing was
// past the cursors, then a backlog built up (a NATS outage, relays stopped for a deploy), and a cursor
// snapshot that saw a long transaction in progress (its xid in the snapshot's xip list, so its rows
// are still ahead of the cursor while everything committed after it began is behind). A read that
// walked from that transaction's xid, or over the backlog, handles tens of thousands of rows. These
// tests build exactly that and count the rows each plan node handled (EXPLAIN ANALYZE), which, unlike
// time, does not drift with the machine's load.

const tdb = await createTestDatabase();
const PARTITIONS = Array.from({ length: 16 }, (_, i) => i);
/** Per partition, as the relay asks for it (its batch split over 16 partitions, at least 32). */
const LIMIT = 32;
const BATCH = LIMIT * PARTITIONS.length;
const READ = 20_000;
const BACKLOG = 20_000;
const OLD_ROWS = 160;

let old: pg.Client; // the long transaction, open from before the read rows until the last test
let oldXid = '';
let cursor = ''; // the cursor's snapshot: the read rows behind it, the old transaction in its xip list

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: tdb.url });
  await c.connect();
  return c;
}

const insertRows = (n: number, tag: string) => sql`
  INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
  SELECT gen_random_uuid(), 'order', gen_random_uuid()::text, 'order_created', 'orders.order_created',
         jsonb_build_object('n', i, 'tag', ${tag}::text)
  FROM generate_series(1, ${n}::int) AS i`;

/** Rows produced plus rows filtered out, over every loop of one plan node. */
function ownRows(plan: Record<string, unknown>): number {
  const loops = Number(plan['Actual Loops'] ?? 1);
  return (
    (Number(plan['Actual Rows'] ?? 0) +
      Number(plan['Rows Removed by Filter'] ?? 0) +
      Number(plan['Rows Removed by Join Filter'] ?? 0) +
      Number(plan['Rows Removed by Index Recheck'] ?? 0)) *
    loops
  );
}

function nodes(plan: Record<string, unknown>): Record<string, unknown>[] {
  const children = (plan['Plans'] as Record<string, unknown>[] | undefined) ?? [];
  return [plan, ...children.flatMap(nodes)];
}

const describeNode = (n: Record<string, unknown>) =>
  `${String(n['Node Type'])}${n['Index Name'] ? ` on ${String(n['Index Name'])}` : ''}: ${ownRows(n)} rows`;

/** A literal SQL array of the values (text, or null), cast to `type`. */
function array(c: pg.Client, values: readonly (string | number | null)[], type: string): string {
  return `ARRAY[${values.map((v) => (v === null ? 'NULL' : c.escapeLiteral(String(v)))).join(', ')}]::${type}`;
}

/**
 * EXPLAIN ANALYZE of the relay's own statement (READ_LOG_SQL, prepared as the relay prepares it), for
 * every partition from `from`, under `planCacheMode` (the relay's named statement runs with a custom
 * plan five times, then possibly with the generic one for good).
 */
async function explainRead(
  from: LogPosition,
  planCacheMode: 'force_custom_plan' | 'force_generic_plan',
): Promise<{ returned: number; nodes: Record<string, unknown>[]; plan: string }> {
  const c = await client();
  try {
    await c.query(`SET plan_cache_mode = ${planCacheMode}`);
    await c.query(`PREPARE read_log AS ${READ_LOG_SQL}`);
    /** The same value for every partition. */
    const each = (value: string | null, type: string) =>
      array(
        c,
        PARTITIONS.map(() => value),
        type,
      );
    const args = [
      array(c, PARTITIONS, 'int[]'),
      each(from.snapshot, 'text[]'),
      each(from.target, 'text[]'),
      each(from.afterXid, 'text[]'),
      each(from.afterSeq, 'bigint[]'),
      ...[0, 1, 2].map(() => each(null, 'text[]')),
      each(null, 'bigint[]'),
      String(LIMIT),
    ];
    const { rows } = await c.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE read_log(${args.join(', ')})`,
    );
    const plan = rows[0]?.['QUERY PLAN'][0].Plan ?? {};
    return {
      returned: Number(plan['Actual Rows'] ?? 0),
      nodes: nodes(plan),
      plan: JSON.stringify(plan, null, 1),
    };
  } finally {
    await c.end();
  }
}

const fromCursor = (): LogPosition => ({ snapshot: cursor, target: null, afterXid: null, afterSeq: null });

beforeAll(async () => {
  // Autovacuum off for this table, so nothing refreshes the statistics behind the test's back.
  await sql`ALTER TABLE outbox SET (autovacuum_enabled = off)`.execute(tdb.db);
  // The long transaction: begun (with rows of its own) before everything else, left open.
  old = await client();
  await old.query('BEGIN');
  const insertOld = insertRows(OLD_ROWS, 'old').compile(tdb.db);
  await old.query(insertOld.sql, [...insertOld.parameters]);
  oldXid = (await old.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]?.x ?? '';
  // Rows committed after it began, in several transactions: all read by the cursor below.
  for (let i = 0; i < 10; i++) await insertRows(READ / 10, 'read').execute(tdb.db);
  await sql`ANALYZE outbox`.execute(tdb.db); // the planner now "knows" no row is past the cursor
  const { rows } = await sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`.execute(tdb.db);
  cursor = rows[0]?.s ?? '';
  // The backlog, committed after the cursor's snapshot: unknown to the statistics.
  for (let i = 0; i < 10; i++) await insertRows(BACKLOG / 10, 'backlog').execute(tdb.db);
}, 120_000);
afterAll(async () => {
  await old?.end().catch(() => {});
  await tdb.drop();
});

describe('the log read under stale statistics, a 20,000-row backlog and an old transaction in the cursor', () => {
  it('starts from a cursor whose xip list holds the old transaction', async () => {
    const { rows } = await sql<{ in_xip: boolean; before_xmin: boolean }>`
      SELECT ${oldXid}::xid8 IN (SELECT pg_snapshot_xip(${cursor}::pg_snapshot)) AS in_xip,
             ${oldXid}::xid8 = pg_snapshot_xmin(${cursor}::pg_snapshot) AS before_xmin`.execute(tdb.db);
    expect(rows[0]).toEqual({ in_xip: true, before_xmin: true });
  });

  for (const phase of ['still open', 'committed'] as const) {
    for (const mode of ['force_custom_plan', 'force_generic_plan'] as const) {
      it(`handles about one batch per partition per plan node, not the backlog (old transaction ${phase}, ${mode})`, async () => {
        if (phase === 'committed' && !(await oldCommitted())) await old.query('COMMIT');
        const { returned, nodes, plan } = await explainRead(fromCursor(), mode);
        // Every partition has far more than LIMIT rows waiting: a full batch comes back.
        expect(returned, plan).toBe(BATCH);
        // Per node: the two walks of each partition (the old transaction's rows, the rows after the
        // cursor) return at most LIMIT rows each. A walk over the backlog, or over the read rows
        // committed since the old transaction began, handles 20,000.
        const worst = nodes.reduce((a, b) => (ownRows(b) > ownRows(a) ? b : a));
        expect(
          ownRows(worst),
          `${describeNode(worst)}\n${nodes.map(describeNode).join('\n')}\n${plan}`,
        ).toBeLessThanOrEqual(2 * BATCH + PARTITIONS.length);
        const total = nodes.reduce((sum, n) => sum + ownRows(n), 0);
        expect(total, nodes.map(describeNode).join('\n')).toBeLessThan(20 * BATCH);
      });
    }
  }

  it('still reads correctly: per partition, in (xid, seq) order, the old transaction first, nothing behind the cursor', async () => {
    if (!(await oldCommitted())) await old.query('COMMIT');
    const reads = await readOutboxLog(
      tdb.db,
      PARTITIONS.map((partition) => ({ partition, from: fromCursor() })),
      LIMIT,
    );
    const ids = reads.flatMap((r) => r.events.map((e) => e.id));
    expect(ids).toHaveLength(BATCH);
    const { rows } = await sql<{ id: string; partition: number; tag: string; behind: boolean }>`
      SELECT id, partition, payload->>'tag' AS tag,
             pg_visible_in_snapshot(xid, ${cursor}::pg_snapshot) AS behind
      FROM outbox WHERE id = ANY(${ids}::uuid[])`.execute(tdb.db);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const read of reads) {
      for (const e of read.events) {
        expect(byId.get(e.id)).toMatchObject({ partition: read.partition, behind: false });
      }
      const keys = read.events.map((e) => [BigInt(e.xid), BigInt(e.seq)] as const);
      const sorted = [...keys].sort((a, b) =>
        a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] < b[1] ? -1 : 1,
      );
      expect(keys).toEqual(sorted);
      // The old transaction's rows of this partition come first, all of them (fewer than LIMIT).
      const { rows: own } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM outbox WHERE xid = ${oldXid}::xid8 AND partition = ${read.partition}`.execute(
        tdb.db,
      );
      const tags = read.events.map((e) => byId.get(e.id)?.tag);
      const n = own[0]?.n ?? 0;
      expect(tags.slice(0, n)).toEqual(Array(n).fill('old'));
      expect(tags.slice(n).every((t) => t === 'backlog')).toBe(true);
    }
  });
});

async function oldCommitted(): Promise<boolean> {
  const { rows } = await sql<{ done: boolean }>`
    SELECT pg_xact_status(${oldXid}::xid8) = 'committed' AS done`.execute(tdb.db);
  return rows[0]?.done === true;
}
