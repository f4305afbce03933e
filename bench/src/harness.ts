// Helpers for the bench scripts (main.ts, soak.ts) that drive the built API and relay against a database
// and a nats-server of their own.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDb, type Db, outboxBacklog } from '@orders/db';
import {
  adminQuery,
  createMigratedTemplate,
  databaseUrl,
  freePort,
  LOCAL_POSTGRES_URL,
  type ServiceProcess,
  startNodeProcess,
  uniqueDatabaseName,
} from '@orders/testkit';
import type { JsMsg, NatsConnection } from 'nats';
import { machineCpuSeconds } from './machine-cpu.js';

/** The server the bench creates its databases on: `TEST_DATABASE_URL`, else the local one. */
export const ADMIN_URL = process.env['TEST_DATABASE_URL'] || LOCAL_POSTGRES_URL;

let template: string | undefined;

/**
 * A fresh migrated database of the caller's own, dropped by `drop`. The first call migrates a template
 * database; every database is a clone of it, so a scenario starts in milliseconds. Call
 * {@link dropTemplate} when the run ends.
 */
export async function freshDatabase(
  prefix = 'bench',
  poolSize = 4,
): Promise<{ url: string; db: Db; drop: () => Promise<void> }> {
  template ??= await createMigratedTemplate(ADMIN_URL, 'bench_tpl');
  const name = uniqueDatabaseName(prefix);
  await adminQuery(ADMIN_URL, [`CREATE DATABASE "${name}" TEMPLATE "${template}"`]);
  const url = databaseUrl(ADMIN_URL, name);
  const db = createDb({ url, poolSize, connectTimeoutMs: 5000, statementTimeoutMs: 120_000 });
  return {
    url,
    db,
    drop: async () => {
      await db.destroy();
      await adminQuery(ADMIN_URL, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
    },
  };
}

/** Drops the template {@link freshDatabase} made, if it made one. */
export async function dropTemplate(): Promise<void> {
  if (!template) return;
  const name = template;
  template = undefined;
  await adminQuery(ADMIN_URL, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
}

export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms`);
}

/** Starts an HTTP server process on a free port and waits until its /health answers. */
async function startHttpServer(
  entry: string,
  env: Record<string, string>,
): Promise<{ proc: ServiceProcess; url: string }> {
  const port = await freePort();
  const proc = startNodeProcess(entry, { ...env, SERVICE_PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(async () => (await fetch(`${url}/health`).catch(() => undefined))?.ok === true, 15_000, 50);
  return { proc, url };
}

export function startApi(
  dbUrl: string,
  stream: string,
  env: Record<string, string> = {},
): Promise<{ proc: ServiceProcess; url: string }> {
  return startHttpServer('apps/api/dist/main.js', {
    DATABASE_URL: dbUrl,
    HOST: '127.0.0.1',
    NATS_STREAM: stream,
    LOG_LEVEL: 'warn',
    ...env,
  });
}

/** The bare handler (bare-http.ts) with the API's statement, on plain node:http or on Hono: the HTTP ceilings. */
export function startBareHttp(
  dbUrl: string,
  stream: string,
  mode: 'node' | 'hono',
): Promise<{ proc: ServiceProcess; url: string }> {
  return startHttpServer('bench/dist/bare-http.js', {
    DATABASE_URL: dbUrl,
    NATS_STREAM: stream,
    BARE_HTTP: mode,
  });
}

/** Starts a relay on a free ops port; `url` serves /health, /ready and /metrics once it listens. */
export async function startRelay(
  dbUrl: string,
  natsUrl: string,
  stream: string,
  env: Record<string, string> = {},
): Promise<{ proc: ServiceProcess; url: string }> {
  const port = await freePort();
  const proc = startNodeProcess('apps/relay/dist/main.js', {
    DATABASE_URL: dbUrl,
    NATS_URL: natsUrl,
    NATS_STREAM: stream,
    RELAY_PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...env,
  });
  return { proc, url: `http://127.0.0.1:${port}` };
}

export async function stopAll(procs: readonly ServiceProcess[]): Promise<void> {
  for (const p of procs) if (p.alive()) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
}

export async function streamMessages(nc: NatsConnection, stream: string): Promise<number> {
  try {
    return (await (await nc.jetstreamManager()).streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

export interface ExactlyOnce {
  ok: boolean;
  rows: number;
  messages: number;
  missing: number;
  duplicated: number;
  unexpected: number;
}

/**
 * Waits until `stream` holds `n` messages. Returns when the first message was seen (the relay's
 * first publish: its process start, module loading included, lies before it) and when the last was,
 * with the machine CPU used from the first to the last.
 */
export async function waitForDrain(
  nc: NatsConnection,
  stream: string,
  n: number,
  timeoutMs = 600_000,
): Promise<{ firstAt: number; doneAt: number; cpuAfterFirst: number }> {
  let first: { at: number; cpu: number } | undefined;
  await waitUntil(
    async () => {
      const count = await streamMessages(nc, stream);
      if (count > 0 && first === undefined) first = { at: performance.now(), cpu: await machineCpuSeconds() };
      return count >= n;
    },
    timeoutMs,
    20,
  );
  const doneAt = performance.now();
  const cpu = await machineCpuSeconds();
  const from = first ?? { at: doneAt, cpu };
  return { firstAt: from.at, doneAt, cpuAfterFirst: cpu - from.cpu };
}

/** Exactly-once check: reads the whole stream back and compares Nats-Msg-Id with the outbox ids. */
export async function verifyExactlyOnce(nc: NatsConnection, stream: string, db: Db): Promise<ExactlyOnce> {
  const ids = new Set((await db.selectFrom('outbox').select('id').execute()).map((r) => r.id));
  const total = await streamMessages(nc, stream);
  const counts = new Map<string, number>();
  if (total > 0) {
    const consumer = await nc.jetstream().consumers.get(stream);
    const iter = await consumer.consume({ max_messages: 2000 });
    let seen = 0;
    for await (const m of iter as AsyncIterable<JsMsg>) {
      const id = m.headers?.get('Nats-Msg-Id') ?? '';
      counts.set(id, (counts.get(id) ?? 0) + 1);
      if (++seen >= total) break;
    }
    await iter.close();
  }
  const missing = [...ids].filter((id) => !counts.has(id)).length;
  const duplicated = [...counts.values()].filter((n) => n > 1).length;
  const unexpected = [...counts.keys()].filter((id) => !ids.has(id)).length;
  return {
    ok: missing === 0 && duplicated === 0 && unexpected === 0,
    rows: ids.size,
    messages: total,
    missing,
    duplicated,
    unexpected,
  };
}

/** Outbox rows no partition cursor has read yet, plus dead letters (not in the stream either). */
export async function unpublished(db: Db): Promise<number> {
  const backlog = await outboxBacklog(db);
  return backlog.pending + backlog.dead;
}

/** Resident set size of a process in bytes (VmRSS in /proc/<pid>/status), undefined once it is gone. */
export async function rssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat. */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces: utime is the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** Runs `run` and returns its result with the machine CPU (s) and the wall time (s) it took. */
export async function measureMachineCpu<T>(
  run: () => Promise<T>,
): Promise<{ result: T; cpu: number; wall: number }> {
  const before = await machineCpuSeconds();
  const t0 = performance.now();
  const result = await run();
  return { result, cpu: (await machineCpuSeconds()) - before, wall: (performance.now() - t0) / 1000 };
}
