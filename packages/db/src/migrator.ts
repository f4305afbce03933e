import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@orders/logger';
import { type Kysely, sql } from 'kysely';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';

/** A migration run that must not go ahead: an edited applied file, a failed statement, a missing file. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** `migrations/` at the repository root, found from this file (src/ or dist/ alike); `MIGRATIONS_DIR` overrides it in the CLI. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));

const CHECKSUM_TABLE = 'schema_migration_checksums';
// Any constant works; it only has to differ from other advisory locks taken on this database.
const MIGRATE_LOCK_KEY = 7_461_205_318;

interface MigrationFile {
  /** The migration's name as recorded: the file name without `.sql`, after its source's namespace. */
  readonly name: string;
  readonly sql: string;
  readonly sha256: string;
}

/**
 * One directory of migrations a database takes. A database may take several: the inventory's takes
 * the outbox's files from `migrations/` (OUTBOX_MIGRATIONS), the consumer package's inbox, and its own.
 */
export interface MigrationSource {
  readonly dir: string;
  /** Which files of the directory belong to this source (by name without `.sql`); all when absent. */
  readonly include?: (name: string) => boolean;
  /**
   * Recorded names become `<namespace>/<file>`, so two sources may both have a `0001_...`. The
   * outbox's files have none: they are recorded under the names the orders database knows them by.
   */
  readonly namespace?: string;
}

/**
 * The outbox's own migrations in `migrations/`: every `NNNN_outbox*` file. They touch nothing but the
 * outbox's tables, so any database whose service writes events takes them and the relay reads it as
 * it reads the orders database. A new outbox migration must keep the `_outbox` name (a test checks
 * that the outbox files alone build what the relay needs).
 */
export const OUTBOX_MIGRATIONS: MigrationSource = Object.freeze({
  dir: DEFAULT_MIGRATIONS_DIR,
  include: (name: string) => /^\d+_outbox/.test(name),
});

/** Reads `NNNN_name.sql` files in name order. */
export async function readMigrationFiles(dir: string): Promise<MigrationFile[]> {
  return readSource({ dir });
}

async function readSource(source: MigrationSource): Promise<MigrationFile[]> {
  const names = (await readdir(source.dir))
    .filter((f) => /^\d+_[\w-]+\.sql$/.test(f))
    .filter((f) => source.include?.(f.replace(/\.sql$/, '')) ?? true)
    .sort();
  return Promise.all(
    names.map(async (file) => {
      const text = await readFile(path.join(source.dir, file), 'utf8');
      const base = file.replace(/\.sql$/, '');
      return {
        name: source.namespace ? `${source.namespace}/${base}` : base,
        sql: text,
        sha256: createHash('sha256').update(text).digest('hex'),
      };
    }),
  );
}

/** Each file becomes a Kysely migration that runs its SQL and records the file's checksum. */
class SqlFileProvider implements MigrationProvider {
  constructor(private readonly files: readonly MigrationFile[]) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    for (const file of this.files) {
      migrations[file.name] = {
        async up(db) {
          // No parameters, so pg sends it as a simple query: a file may hold many statements.
          await sql.raw(file.sql).execute(db);
          await sql`INSERT INTO ${sql.table(CHECKSUM_TABLE)} (name, sha256) VALUES (${file.name}, ${file.sha256})`.execute(
            db,
          );
        },
      };
    }
    return migrations;
  }
}

export interface MigrateOptions {
  readonly migrationsDir?: string;
  /** Several directories instead of `migrationsDir` (see {@link MigrationSource}). */
  readonly sources?: readonly MigrationSource[];
  readonly logger?: Logger;
}

export interface MigrateResult {
  /** Names of the migrations this run applied, in order; empty when the schema was current. */
  readonly applied: readonly string[];
}

/**
 * Applies every pending migration in one transaction, under a session advisory lock so concurrent
 * runs (several containers starting at once) queue instead of racing. Before anything runs, refuses
 * if an already-applied file has changed since: migrations are forward-only.
 */
// biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema, before types apply.
export async function migrateToLatest(db: Kysely<any>, options: MigrateOptions = {}): Promise<MigrateResult> {
  const sources = options.sources ?? [{ dir: options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR }];
  const files: MigrationFile[] = [];
  for (const source of sources) {
    const found = await readSource(source);
    if (found.length === 0) throw new MigrationError(`no migration files in ${source.dir}`);
    files.push(...found);
  }
  const names = new Set(files.map((f) => f.name));
  if (names.size !== files.length) throw new MigrationError('two migration sources give the same name');

  return db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${MIGRATE_LOCK_KEY})`.execute(conn);
    try {
      await sql`CREATE TABLE IF NOT EXISTS ${sql.table(CHECKSUM_TABLE)} (
        name text PRIMARY KEY,
        sha256 text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`.execute(conn);
      await verifyChecksums(conn, files);

      const migrator = new Migrator({
        db: conn,
        provider: new SqlFileProvider(files),
        // Kysely orders all names together and, by default, refuses a pending name that sorts before
        // an applied one. Sources are independent of each other (each is ordered within itself), so a
        // new outbox migration may land after the inventory's own files were applied.
        allowUnorderedMigrations: sources.length > 1,
      });
      const { error, results = [] } = await migrator.migrateToLatest();
      const failed = results.find((r) => r.status === 'Error');
      if (error !== undefined) {
        const which = failed ? `migration ${failed.migrationName} failed` : 'migration failed';
        throw new MigrationError(`${which}: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      }
      const applied = results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
      for (const name of applied) options.logger?.info({ migration: name }, 'migration applied');
      return { applied };
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATE_LOCK_KEY})`.execute(conn);
    }
  });
}

// biome-ignore lint/suspicious/noExplicitAny: see migrateToLatest.
async function verifyChecksums(db: Kysely<any>, files: readonly MigrationFile[]): Promise<void> {
  const { rows } = await sql<{ name: string; sha256: string }>`
    SELECT name, sha256 FROM ${sql.table(CHECKSUM_TABLE)}`.execute(db);
  const byName = new Map(files.map((f) => [f.name, f]));
  const edited = rows.filter(
    (r) => byName.get(r.name) !== undefined && byName.get(r.name)?.sha256 !== r.sha256,
  );
  if (edited.length > 0) {
    const names = edited.map((r) => `${r.name}.sql`).join(', ');
    throw new MigrationError(
      `refusing to migrate: already-applied migration ${names} changed since it was applied. ` +
        'Migrations are forward-only: restore the file and add a new migration for the change.',
    );
  }
}
