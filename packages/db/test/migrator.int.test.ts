import { appendFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createEmptyTestDatabase, type TestDatabase } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Db,
  DEFAULT_MIGRATIONS_DIR,
  MigrationError,
  migrateToLatest,
  OUTBOX_MIGRATIONS,
  readMigrationFiles,
} from '../src/index.js';
import { READ_LOG_SQL } from '../src/outbox-log.js';

/** A private copy of migrations/ in a new temporary folder, for a test to edit. */
async function copyOfMigrations(prefix: string): Promise<string> {
  const copy = await mkdtemp(path.join(tmpdir(), prefix));
  await cp(DEFAULT_MIGRATIONS_DIR, copy, { recursive: true });
  return copy;
}

const removeFolders = (...folders: string[]) =>
  Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));

// These tests need an empty database (not the migrated template) and a private copy of migrations/.
let empty: TestDatabase;
let db: Db;
let dir: string;

beforeAll(async () => {
  empty = await createEmptyTestDatabase({ prefix: 'orders_migrate', poolSize: 5 });
  db = empty.db;
  dir = await copyOfMigrations('migrations-');
});
afterAll(async () => {
  await empty.drop();
  await removeFolders(dir);
});

describe('migrateToLatest', () => {
  it('applies every file once, even when several runs race, and a second run is a no-op', async () => {
    const files = await readMigrationFiles(dir);
    const runs = await Promise.all([1, 2, 3].map(() => migrateToLatest(db, { migrationsDir: dir })));
    expect(runs.flatMap((r) => r.applied).sort()).toEqual(files.map((f) => f.name));
    const again = await migrateToLatest(db, { migrationsDir: dir });
    expect(again.applied).toEqual([]);
    const { rows } = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`.execute(db);
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        'orders',
        'order_items',
        'outbox',
        'kysely_migration',
        'schema_migration_checksums',
      ]),
    );
  });

  it('has the index the log read walks (outbox_log_idx), and the read uses it', async () => {
    const { rows: index } = await sql<{ def: string }>`
      SELECT pg_get_indexdef('outbox_log_idx'::regclass) AS def`.execute(db);
    expect(index[0]?.def).toMatch(/ON public\.outbox USING btree \(partition, xid, seq\)$/);
    // The relay's own statement, prepared on one connection, for every partition from a snapshot.
    const plan = await db.connection().execute(async (conn) => {
      await sql`SET enable_seqscan = off`.execute(conn);
      await sql.raw(`PREPARE read_log AS ${READ_LOG_SQL}`).execute(conn);
      const { rows: snap } = await sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`.execute(conn);
      const partitions = Array.from({ length: 16 }, (_, i) => i);
      const nulls = `ARRAY[${partitions.map(() => 'NULL').join(',')}]`;
      const { rows } = await sql<{ 'QUERY PLAN': string }>`
        EXPLAIN EXECUTE read_log(${sql.raw(`ARRAY[${partitions.join(',')}]::int[]`)},
          ${sql.raw(`ARRAY[${partitions.map(() => `'${snap[0]?.s}'`).join(',')}]::text[]`)},
          ${sql.raw(`${nulls}::text[], ${nulls}::text[], ${nulls}::bigint[]`)},
          ${sql.raw(`${nulls}::text[], ${nulls}::text[], ${nulls}::text[], ${nulls}::bigint[], 32`)})`.execute(
        conn,
      );
      await sql`DEALLOCATE read_log`.execute(conn);
      await sql`RESET enable_seqscan`.execute(conn);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    // Both walks of each partition (the snapshot's in-progress transactions, the rows after it) go
    // through the index.
    const walks = plan.split('\n').filter((line) => /Index (Only )?Scan using outbox_log_idx/.test(line));
    expect(walks.length, plan).toBeGreaterThanOrEqual(2);
    expect(plan).not.toMatch(/Seq Scan on outbox\s/);
  });

  it('refuses loudly when an applied migration was edited', async () => {
    const [first] = await readMigrationFiles(dir);
    await appendFile(path.join(dir, `${first?.name}.sql`), '\n-- an innocent-looking edit\n');
    await expect(migrateToLatest(db, { migrationsDir: dir })).rejects.toThrow(MigrationError);
    await expect(migrateToLatest(db, { migrationsDir: dir })).rejects.toThrow(
      /0001_orders\.sql changed since it was applied/,
    );
  });

  it('applies a new file and rolls back a failing one whole', async () => {
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true, force: true }); // undo the edit
    await writeFile(path.join(dir, '9000_extra.sql'), 'CREATE TABLE extra_one (id int);');
    await writeFile(
      path.join(dir, '9001_broken.sql'),
      'CREATE TABLE extra_two (id int);\nSELECT * FROM no_such_table;',
    );
    await expect(migrateToLatest(db, { migrationsDir: dir })).rejects.toThrow(/9001_broken/);
    // One transaction: the good file before the broken one was not kept either.
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('extra_one', 'extra_two')`.execute(
      db,
    );
    expect(rows[0]?.n).toBe(0);
    await rm(path.join(dir, '9001_broken.sql'));
    expect((await migrateToLatest(db, { migrationsDir: dir })).applied).toEqual(['9000_extra']);
  });
});

describe('migrateToLatest with several sources (a consumer database)', () => {
  let svc: TestDatabase;
  let outboxDir: string;
  let ownDir: string;
  beforeAll(async () => {
    svc = await createEmptyTestDatabase({ prefix: 'orders_migrate_sources', poolSize: 2 });
    outboxDir = await copyOfMigrations('outbox-migrations-');
    ownDir = await mkdtemp(path.join(tmpdir(), 'own-migrations-'));
    await writeFile(path.join(ownDir, '0001_things.sql'), 'CREATE TABLE things (id int PRIMARY KEY);');
  });
  afterAll(async () => {
    await svc.drop();
    await removeFolders(outboxDir, ownDir);
  });

  it('takes the outbox files alone, its own namespaced, is a no-op the second time, and takes a later outbox migration', async () => {
    const sources = () => [
      { ...OUTBOX_MIGRATIONS, dir: outboxDir },
      { dir: ownDir, namespace: 'svc' },
    ];
    const first = await migrateToLatest(svc.db, { sources: sources() });
    expect(first.applied.at(-1)).toBe('svc/0001_things');
    expect(first.applied.filter((n) => !n.includes('outbox') && n !== 'svc/0001_things')).toEqual([]);
    const { rows } = await sql<{ orders: string | null; outbox: string | null; cursors: string | null }>`
      SELECT to_regclass('orders')::text AS orders, to_regclass('outbox')::text AS outbox,
             to_regclass('outbox_cursors')::text AS cursors`.execute(svc.db);
    // What the relay reads is there; the orders' own tables are not.
    expect(rows[0]).toEqual({ orders: null, outbox: 'outbox', cursors: 'outbox_cursors' });
    expect((await migrateToLatest(svc.db, { sources: sources() })).applied).toEqual([]);
    // A new outbox migration sorts before the applied `svc/...` names; it is applied all the same.
    await writeFile(path.join(outboxDir, '0099_outbox_later.sql'), 'CREATE TABLE outbox_later (id int);');
    expect((await migrateToLatest(svc.db, { sources: sources() })).applied).toEqual(['0099_outbox_later']);
  });
});
