import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  createTestDatabase,
  freePort,
  REPO_ROOT,
  startNodeProcess,
  startServerProcess,
  startTestIssuer,
} from '@orders/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SEED_ORDER } from './helpers.js';

// The built API as operators run it: `node apps/api/dist/main.js`, configured only by the environment.
const ENTRY = 'apps/api/dist/main.js';
if (!existsSync(path.join(REPO_ROOT, ENTRY)))
  throw new Error(`${ENTRY} is missing: run \`pnpm build\` first (pnpm test does)`);

const tdb = await createTestDatabase({ poolSize: 2 });
afterAll(() => tdb.drop());

describe('the API process', () => {
  it('serves, finishes a request in flight on SIGTERM, then exits 0', async () => {
    const { proc: api, port } = await startServerProcess(
      ENTRY,
      (port) => ({ DATABASE_URL: tdb.url, SERVICE_PORT: String(port), LOG_LEVEL: 'info' }),
      (api) => api.waitForLine(/"msg":"api listening"/),
    );
    try {
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/health`)).status).toBe(200);

      // Hold a lock the create must wait for, so the request is still in flight when SIGTERM lands.
      const locker = new pg.Client({ connectionString: tdb.url });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      const inFlight = fetch(`${base}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(SEED_ORDER),
      });
      await sleep(300);
      api.kill('SIGTERM');
      await api.waitForLine(/shutting down/);
      setTimeout(() => void locker.query('COMMIT').then(() => locker.end()), 300);
      const res = await inFlight;
      expect(res.status).toBe(201);
      const { code, signal } = await api.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(api.lines.at(-1)).toMatch(/"msg":"stopped"/);
      // New connections are refused once it is down.
      await expect(fetch(`${base}/health`)).rejects.toThrow();
    } finally {
      if (api.alive()) api.kill('SIGKILL');
    }
  });

  it('logs one JSON line per request with its request id, and no secrets', async () => {
    const url = new URL(tdb.url);
    url.password = 'sup3r-secret';
    // trust auth ignores the password, so the URL still works; it must never be printed.
    const { proc: api, port } = await startServerProcess(
      ENTRY,
      (port) => ({ DATABASE_URL: url.toString(), SERVICE_PORT: String(port) }),
      (api) => api.waitForLine(/"msg":"api listening"/),
    );
    try {
      await fetch(`http://127.0.0.1:${port}/orders/123e4567-e89b-12d3-a456-426614174000`, {
        headers: { 'x-request-id': 'log-check-1' },
      });
      const line = await api.waitForLine(/log-check-1/);
      expect(JSON.parse(line)).toMatchObject({
        request_id: 'log-check-1',
        method: 'GET',
        route: '/orders/:id',
        status: 404,
        msg: 'request',
      });
      api.kill('SIGTERM');
      await api.exited;
      expect([...api.lines, ...api.stderr].join('\n')).not.toContain('sup3r-secret');
      for (const l of api.lines) expect(() => JSON.parse(l)).not.toThrow();
      // No AUTH_* variable: authentication is off, and the process says so once, at start.
      const off = api.lines.filter((l) => l.includes('authentication is off'));
      expect(off).toHaveLength(1);
      expect(JSON.parse(off[0] ?? '{}')).toMatchObject({ level: 'warn', component: 'auth' });
    } finally {
      if (api.alive()) api.kill('SIGKILL');
    }
  });

  it('with AUTH_* set, checks bearer tokens against the JWKS and logs the caller, not the token', async () => {
    const issuer = await startTestIssuer();
    const metricsToken = 'scrape-0123456789abcdef';
    const { proc: api, port } = await startServerProcess(
      ENTRY,
      (port) => ({
        DATABASE_URL: tdb.url,
        SERVICE_PORT: String(port),
        AUTH_JWKS_URL: issuer.jwks.url,
        AUTH_ISSUER: issuer.issuer,
        AUTH_AUDIENCE: issuer.audience,
        METRICS_TOKEN: metricsToken,
      }),
      (api) => api.waitForLine(/"msg":"api listening"/),
    );
    try {
      const base = `http://127.0.0.1:${port}`;
      // Fetched at start, so the first request does not wait for the issuer.
      await api.waitForLine(/issuer keys fetched/);
      expect(issuer.jwks.fetches()).toBe(1);
      const post = (headers: Record<string, string>) =>
        fetch(`${base}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(SEED_ORDER),
        });
      const refused = await post({});
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer');
      const token = await issuer.token(['orders:write'], { sub: 'svc-process-test' });
      expect((await post({ authorization: `Bearer ${token}`, 'x-request-id': 'auth-1' })).status).toBe(201);
      expect(JSON.parse(await api.waitForLine(/auth-1/))).toMatchObject({
        sub: 'svc-process-test',
        status: 201,
      });
      expect((await fetch(`${base}/health`)).status).toBe(200);
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      expect(
        (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).status,
      ).toBe(200);
      api.kill('SIGTERM');
      await api.exited;
      const output = [...api.lines, ...api.stderr].join('\n');
      expect(output).not.toContain(token);
      expect(output).not.toContain(metricsToken);
      expect(output).not.toContain('authentication is off');
    } finally {
      if (api.alive()) api.kill('SIGKILL');
      await issuer.jwks.stop();
    }
  });

  it('a failing shutdown is logged in one line and exits 1, not an unhandled rejection', async () => {
    // The fault, injected into the real process before main.ts runs: closing the pg pool fails.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'api-shutdown-'));
    const inject = path.join(dir, 'pool-end-fails.mjs');
    await writeFile(
      inject,
      [
        "import { createRequire } from 'node:module';",
        // The pg module main.ts's database package loads (the same CommonJS instance).
        `const pg = createRequire(${JSON.stringify(path.join(REPO_ROOT, 'packages/db/package.json'))})('pg');`,
        "pg.Pool.prototype.end = () => Promise.reject(new Error('injected: pool end failed'));",
      ].join('\n'),
    );
    const port = await freePort();
    const api = startNodeProcess(ENTRY, {
      DATABASE_URL: tdb.url,
      SERVICE_PORT: String(port),
      LOG_LEVEL: 'info',
      NODE_OPTIONS: `--import=${pathToFileURL(inject).href}`,
    });
    try {
      await api.waitForLine(/"msg":"api listening"/);
      // Kysely opens (and so later closes) the pool only once a query has run.
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      api.kill('SIGTERM');
      const { code, signal } = await api.exited;
      expect({ code, signal }).toEqual({ code: 1, signal: null });
      const failed = api.lines.filter((l) => l.includes('injected: pool end failed'));
      expect(failed).toHaveLength(1);
      expect(JSON.parse(failed[0] ?? '{}')).toMatchObject({
        level: 'error',
        msg: 'shutdown failed: exiting',
        err: { message: 'injected: pool end failed' },
      });
      // Nothing on stderr: no stack trace of an unhandled rejection.
      expect(api.stderr).toEqual([]);
    } finally {
      if (api.alive()) api.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad configuration with one line naming each variable', async () => {
    const api = startNodeProcess(ENTRY, { SERVICE_PORT: 'eighty', DB_POOL_SIZE: '0' });
    const { code } = await api.exited;
    expect(code).toBe(2);
    expect(api.stderr).toHaveLength(1);
    expect(api.stderr[0]).toMatch(/SERVICE_PORT/);
    expect(api.stderr[0]).toMatch(/DB_POOL_SIZE/);
  });
});
