import { appendFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { adminQuery, databaseUrl, uniqueDatabaseName } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createDb,
  type Db,
  DEFAULT_MIGRATIONS_DIR,
  MigrationError,
  migrateToLatest,
  readMigrationFiles,
} from '../src/index.js';

// These tests need an empty database (not the migrated template) and a private copy of migrations/.
const adminUrl = inject('testkitPgAdminUrl');
const name = uniqueDatabaseName('orders_migrate');
let db: Db;
let dir: string;

beforeAll(async () => {
  await adminQuery(adminUrl, [`CREATE DATABASE "${name}"`]);
  db = createDb({
    url: databaseUrl(adminUrl, name),
    poolSize: 5,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 30_000,
  });
  dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
  await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
});
afterAll(async () => {
  await db.destroy();
  await adminQuery(adminUrl, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
  await rm(dir, { recursive: true, force: true });
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

  it('has a partial index that makes "oldest unpublished" an index scan', async () => {
    await sql`SET enable_seqscan = off`.execute(db);
    const { rows } = await sql<{ 'QUERY PLAN': string }>`
      EXPLAIN SELECT id FROM outbox WHERE published_at IS NULL AND dead_at IS NULL ORDER BY seq LIMIT 100`.execute(
      db,
    );
    expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('outbox_unpublished_idx');
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
