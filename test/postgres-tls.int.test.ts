import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestCertificates, REPO_ROOT, startServerProcess } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestPostgres } from './throwaway-postgres.js';

// PostgreSQL over TLS through DATABASE_URL or PGSSLMODE: a throwaway cluster of the test's own that
// accepts TCP connections only with TLS (pg_hba: hostssl), a certificate from a throwaway CA.

const certs = await createTestCertificates();
const dir = await mkdtemp(path.join(os.tmpdir(), 'orders-pg-tls-'));
await chmod(dir, 0o755);
const { port, server } = await startTestPostgres({
  dataDir: path.join(dir, 'pg'),
  serverOptions: ['ssl=on', 'ssl_cert_file=server.crt', 'ssl_key_file=server.key'],
  configure: (dataDir) => {
    copyFileSync(certs.serverCertFile, path.join(dataDir, 'server.crt'));
    copyFileSync(certs.serverKeyFile, path.join(dataDir, 'server.key'));
    chmodSync(path.join(dataDir, 'server.key'), 0o600);
    if (process.getuid?.() === 0) {
      const uid = Number(run('id', '-u', 'postgres'));
      const gid = Number(run('id', '-g', 'postgres'));
      for (const f of ['server.crt', 'server.key']) chownSync(path.join(dataDir, f), uid, gid);
    }
    // Over TCP, TLS or nothing.
    writeFileSync(
      path.join(dataDir, 'pg_hba.conf'),
      'local all all trust\nhostssl all all 127.0.0.1/32 trust\n',
    );
  },
});
afterAll(async () => {
  server.stop();
  await rm(dir, { recursive: true, force: true });
  await certs.dispose();
});

function run(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
}

const base = `postgres://postgres@127.0.0.1:${port}/orders`;

async function migrate(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'packages/db/dist/cli.js')], {
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

async function apiHealth(env: Record<string, string>): Promise<number> {
  const { proc, port: apiPort } = await startServerProcess('apps/api/dist/main.js', (apiPort) => ({
    SERVICE_PORT: String(apiPort),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...env,
  }));
  try {
    const res = await fetch(`http://127.0.0.1:${apiPort}/health`);
    await res.body?.cancel();
    return res.status;
  } finally {
    proc.kill('SIGTERM');
    await proc.exited;
  }
}

// The schema, once, so that every test can run alone (migrate also creates the database).
const initial = await migrate({ DATABASE_URL: base, PGSSLMODE: 'no-verify' });
if (initial.code !== 0) throw new Error(`migrate failed: ${initial.output}`);

describe('PostgreSQL over TLS', () => {
  it('DATABASE_URL with sslmode=verify-full and the CA: migrate and the API work; without TLS the server refuses', async () => {
    const verified = `${base}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.caFile)}`;
    const migrated = await migrate({ DATABASE_URL: verified });
    expect(migrated.code, migrated.output).toBe(0);
    expect(await apiHealth({ DATABASE_URL: verified })).toBe(200);
    // No TLS: pg_hba has no entry for it; the API stays up and reports the database unavailable.
    expect(await apiHealth({ DATABASE_URL: base })).toBe(503);
  });

  it('PGSSLMODE from the environment applies to DATABASE_URL and to the DB_* variables', async () => {
    expect(await apiHealth({ DATABASE_URL: base, PGSSLMODE: 'no-verify' })).toBe(200);
    expect(await apiHealth({ DB_HOST: '127.0.0.1', DB_PORT: String(port), PGSSLMODE: 'no-verify' })).toBe(
      200,
    );
  });

  it('verify-full rejects a server whose certificate the CA did not sign', async () => {
    const other = await createTestCertificates();
    try {
      const wrongCa = `${base}?sslmode=verify-full&sslrootcert=${encodeURIComponent(other.caFile)}`;
      expect(await apiHealth({ DATABASE_URL: wrongCa })).toBe(503);
    } finally {
      await other.dispose();
    }
  });
});
