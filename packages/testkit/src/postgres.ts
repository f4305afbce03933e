import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A PostgreSQL server the tests may create and drop databases on. */
export interface PostgresServer {
  /** URL of a maintenance database on the server (user must be allowed to CREATE DATABASE). */
  readonly adminUrl: string;
  /** Where it came from, for the log line. */
  readonly source: 'environment' | 'testcontainers' | 'local';
  stop(): Promise<void>;
}

/** The maintenance database of the local server on its default port (trust auth, user postgres). */
export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Finds a server in the house order: a URL from the environment (`TEST_DATABASE_URL`, then
 * `DATABASE_URL`); a throwaway container when a Docker engine answers; the local server on
 * 127.0.0.1:5432. `TESTKIT_POSTGRES=environment|testcontainers|local` forces one.
 */
export async function findPostgres(env: NodeJS.ProcessEnv = process.env): Promise<PostgresServer> {
  const forced = env['TESTKIT_POSTGRES'];
  const fromEnv = env['TEST_DATABASE_URL'] || env['DATABASE_URL'];
  if ((forced === undefined || forced === 'environment') && fromEnv) {
    return { adminUrl: fromEnv, source: 'environment', stop: async () => {} };
  }
  if (forced === undefined || forced === 'testcontainers') {
    const container = await startContainer(forced === 'testcontainers');
    if (container) return container;
  }
  if (forced === undefined || forced === 'local') {
    await assertAnswers(LOCAL_POSTGRES_URL);
    return { adminUrl: LOCAL_POSTGRES_URL, source: 'local', stop: async () => {} };
  }
  throw new Error(`TESTKIT_POSTGRES=${forced}: no PostgreSQL server found that way`);
}

async function startContainer(required: boolean): Promise<PostgresServer | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch (err) {
    if (required) throw err;
    return undefined; // No Docker engine: fall through to the local server.
  }
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:15-alpine')
    .withDatabase('postgres')
    .withUsername('postgres')
    .withPassword('postgres')
    .start();
  return {
    adminUrl: container.getConnectionUri(),
    source: 'testcontainers',
    stop: async () => {
      await container.stop();
    },
  };
}

async function assertAnswers(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(
      `no PostgreSQL for the tests: set TEST_DATABASE_URL, run a Docker engine, or start the local server on 127.0.0.1:5432 (${String(err)})`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs statements on the maintenance database, one short-lived connection. */
export async function adminQuery(adminUrl: string, statements: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

/** The URL of another database on the same server. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** A database name that no other run or file will pick. */
export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}
