// `pnpm bench [--quick|--full] [--duration S] [--rows N] [--latency-duration S] [--consumer-events N] [--only api,tracing,drain,budget,ordering,latency,held,peer,consumer]`
//
// Starts what it needs (a fresh database per scenario on the local PostgreSQL, its own nats-server on
// a free port, the built API and relay as `node` child processes), runs the scenarios, prints a
// markdown table and writes JSON under bench/results/. Every figure is reported next to a baseline
// measured in the same run, because these machines are shared and noisy: the ratio is the result.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONSUMER_MIGRATIONS } from '@orders/consumer';
import { createDb, type Db, migrateToLatest, OUTBOX_MIGRATIONS, outboxBacklog } from '@orders/db';
import {
  adminQuery,
  databaseUrl,
  type NatsServer,
  REPO_ROOT,
  type ServiceProcess,
  startNatsServer,
  startOtlpReceiver,
  uniqueDatabaseName,
} from '@orders/testkit';
import { sql } from 'kysely';
import { connect, DeliverPolicy, type JsMsg, type NatsConnection, nanos, StorageType } from 'nats';
import pg from 'pg';
import { namesOption, numberOption, parseCommandLine, usageError } from './args.js';
import {
  ADMIN_URL,
  dropTemplate,
  freshDatabase,
  measureMachineCpu,
  processCpuSeconds,
  startApi,
  startBareHttp,
  startRelay as startRelayProcess,
  stopAll,
  streamMessages,
  verifyExactlyOnce,
  waitForDrain,
  waitUntil,
} from './harness.js';
import { eventPayload, percentile } from './payload.js';

// ---------------------------------------------------------------------------------------------- options
const SCENARIOS = [
  'api',
  'tracing',
  'drain',
  'budget',
  'ordering',
  'latency',
  'held',
  'peer',
  'consumer',
] as const;
const USAGE = `pnpm bench [--quick|--full] [--duration S] [--rows N] [--latency-duration S] [--consumer-events N] [--only ${SCENARIOS.join(',')}]`;
const args = parseCommandLine(USAGE, {
  quick: { type: 'boolean' },
  full: { type: 'boolean' },
  duration: { type: 'string' },
  rows: { type: 'string' },
  'latency-duration': { type: 'string' },
  'consumer-events': { type: 'string' },
  only: { type: 'string' },
});
if (args.quick && args.full) usageError(USAGE, '--quick and --full exclude each other');
const quick = !args.full;
const settings = {
  mode: quick ? 'quick' : 'full',
  apiSeconds: numberOption(USAGE, 'duration', args.duration, quick ? 5 : 20, 1),
  drainRows: numberOption(USAGE, 'rows', args.rows, quick ? 20_000 : 100_000, 1),
  latencySeconds: numberOption(USAGE, 'latency-duration', args['latency-duration'], quick ? 5 : 30, 1),
  latencyRates: quick ? [200, 1000] : [200, 1000],
  only: namesOption(USAGE, 'only', args.only, SCENARIOS),
  consumerEvents: numberOption(USAGE, 'consumer-events', args['consumer-events'], quick ? 5_000 : 20_000, 1),
};

for (const entry of ['apps/api/dist/main.js', 'apps/relay/dist/main.js', 'bench/dist/main.js']) {
  if (!existsSync(path.join(REPO_ROOT, entry))) {
    console.error(`${entry} is missing: run \`pnpm build\` first`);
    process.exit(2);
  }
}

const progress = (msg: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---------------------------------------------------------------------------------------------- helpers
/** Runs a bench child script (`node bench/dist/<name>.js args`) and returns the JSON line it prints. */
async function child<T>(name: string, args: readonly (string | number)[]): Promise<T> {
  const proc = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'bench/dist', `${name}.js`), ...args.map(String)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  if (code !== 0) throw new Error(`${name} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as T;
}

/** A relay process on a free ops port (the bench reads only its stream, not its ops endpoints). */
async function startRelay(
  dbUrl: string,
  natsUrl: string,
  stream: string,
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  return (await startRelayProcess(dbUrl, natsUrl, stream, env)).proc;
}

async function ensureStream(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    storage: StorageType.File,
    duplicate_window: nanos(120_000),
  });
}

/** True when every partition's cursor has read every outbox row. */
async function drained(db: Db): Promise<boolean> {
  return (await outboxBacklog(db)).pending === 0;
}

/**
 * `rows` outbox rows by bulk SQL. With `eventsPerAggregate` k > 1, the rows belong to rows/k aggregates in
 * round-robin (row i to aggregate i mod rows/k), as when many orders change status over time; otherwise
 * each row is its own aggregate (order_created of distinct orders).
 */
async function loadBacklog(db: Db, stream: string, rows: number, eventsPerAggregate = 1): Promise<void> {
  const payloads = Array.from({ length: rows }, (_, i) => eventPayload(i));
  const aggregates = Math.max(1, Math.floor(rows / eventsPerAggregate));
  for (let i = 0; i < rows; i += 10_000) {
    const chunk = payloads.slice(i, i + 10_000);
    await sql`
      INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload, created_at)
      SELECT gen_random_uuid(), 'order',
             CASE WHEN ${eventsPerAggregate} > 1 THEN 'agg-' || ((${i} + n - 1) % ${aggregates}) ELSE gen_random_uuid()::text END,
             'order_created', ${`${stream}.order_created`}, p::jsonb, now()
      FROM unnest(${chunk}::text[]) WITH ORDINALITY AS t (p, n)
      ORDER BY n`.execute(db);
  }
  await sql`VACUUM ANALYZE outbox`.execute(db);
}

// ---------------------------------------------------------------------------------------------- scenarios
interface Row {
  scenario: string;
  result: string;
  baseline: string;
  ratio: number | undefined;
  target: string;
  met: boolean | undefined;
  exactlyOnce: string;
}
const rows: Row[] = [];
const details: Record<string, unknown> = {};
let streamSeq = 0;
const nextStream = (name: string) => `bench_${name}_${++streamSeq}`;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

type LoadResult = {
  ordersPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  non2xx: number;
  requests: number;
  /** Open-loop loads: failures by status code or error code. */
  failed?: Record<string, number>;
};
type BaselineResult = { ordersPerSecond: number; p50: number; p99: number; max: number; errors: number };

/** HTTP load on a server process, with the CPU that process and the whole machine spent per request. */
async function httpLoad(
  server: { proc: ServiceProcess; url: string },
  connections: number,
): Promise<LoadResult & { serverCpuUs: number; machineCpuUs: number }> {
  const server0 = await processCpuSeconds(server.proc.pid);
  const { result: load, cpu } = await measureMachineCpu(() =>
    child<LoadResult>('http-load', [server.url, connections, settings.apiSeconds]),
  );
  const perRequest = (seconds: number) => (seconds / Math.max(1, load.requests)) * 1e6;
  return {
    ...load,
    serverCpuUs: perRequest((await processCpuSeconds(server.proc.pid)) - server0),
    machineCpuUs: perRequest(cpu),
  };
}

async function scenarioApi(nats: NatsServer, nc: NatsConnection): Promise<void> {
  for (const connections of [16, 64]) {
    progress(`api: ${connections} connections, ${settings.apiSeconds} s: database baseline`);
    const base = await freshDatabase();
    const baseline = await child<BaselineResult>('db-baseline', [
      base.url,
      connections,
      settings.apiSeconds * 1000,
      16,
    ]);
    await base.drop();

    progress(`api: ${connections} connections, ${settings.apiSeconds} s: HTTP through the API`);
    const stream = nextStream('api');
    const t = await freshDatabase();
    const api = await startApi(t.url, stream);
    // The relay does not run during the load, as in the baseline: this measures the API. It drains
    // afterwards, for the exactly-once check.
    const load = await httpLoad(api, connections);
    await stopAll([api.proc]);
    const relay = await startRelay(t.url, nats.url, stream);
    await waitUntil(() => drained(t.db), 300_000, 50);
    await stopAll([relay]);
    const check = await verifyExactlyOnce(nc, stream, t.db);
    await t.drop();

    // The same statement behind plain node:http and behind Hono with one route and nothing else:
    // what HTTP costs here, and what the framework adds, before the API's own validation and layers.
    const bare: Record<'node' | 'hono', Awaited<ReturnType<typeof httpLoad>>> = Object.create(null);
    for (const mode of ['node', 'hono'] as const) {
      progress(
        `api: ${connections} connections, ${settings.apiSeconds} s: the same statement behind bare ${mode === 'node' ? 'node:http' : 'Hono'}`,
      );
      const b = await freshDatabase();
      const server = await startBareHttp(b.url, nextStream(`bare${mode}`), mode);
      bare[mode] = await httpLoad(server, connections);
      await stopAll([server.proc]);
      await b.drop();
    }

    const ratio = load.ordersPerSecond / baseline.ordersPerSecond;
    const ofDb = (r: number) => fmt(r / baseline.ordersPerSecond, 2);
    const dbBaseline = `${fmt(baseline.ordersPerSecond)} tx/s (same transaction from Node, pool 16, no HTTP)`;
    details[`api_${connections}`] = { load, baseline, bare, check };
    rows.push({
      scenario: `API POST /orders, ${connections} connections`,
      result:
        `${fmt(load.ordersPerSecond)} orders/s, p50 ${fmt(load.p50, 1)} ms, p99 ${fmt(load.p99, 1)} ms, max ${fmt(load.max)} ms, ` +
        `non-2xx ${load.non2xx}; API process CPU ${fmt(load.serverCpuUs)} us/order`,
      baseline: dbBaseline,
      ratio,
      target: connections === 64 ? '>= 0.6, p99 < 50 ms, 0 errors' : '-',
      met: connections === 64 ? ratio >= 0.6 && load.p99 < 50 && load.non2xx === 0 : undefined,
      exactlyOnce: check.ok ? `ok (${fmt(check.rows)} events)` : `FAILED ${JSON.stringify(check)}`,
    });
    rows.push({
      scenario: `HTTP ceilings, ${connections} connections: the API's statement, no validation or layers`,
      result:
        `bare node:http ${fmt(bare.node.ordersPerSecond)} orders/s (${ofDb(bare.node.ordersPerSecond)}, p99 ${fmt(bare.node.p99)} ms), ` +
        `Hono on @hono/node-server ${fmt(bare.hono.ordersPerSecond)} (${ofDb(bare.hono.ordersPerSecond)}, p99 ${fmt(bare.hono.p99)} ms); ` +
        `server process CPU per order: node:http ${fmt(bare.node.serverCpuUs)} us, Hono ${fmt(bare.hono.serverCpuUs)} us, the API ${fmt(load.serverCpuUs)} us`,
      baseline: dbBaseline,
      ratio: bare.hono.ordersPerSecond / baseline.ordersPerSecond,
      target: 'Hono / database: the most a Hono service reaches here',
      met: undefined,
      exactlyOnce: '-',
    });
  }
}

/**
 * What trace export costs the API: its CPU per order with the OpenTelemetry variables unset (no SDK
 * loaded), with every request traced and exported (OTLP/HTTP protobuf to a receiver in this
 * process, batched as by default), and with the SDK loaded but sampling nothing. "Off" runs twice, first and
 * third, so that its run-to-run spread is beside the difference tracing makes.
 */
async function scenarioTracing(): Promise<void> {
  const connections = 16;
  const otlp = await startOtlpReceiver();
  // The default exporter protocol (http/protobuf), as an operator who sets only the endpoint gets.
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_TRACES_SAMPLER: 'always_on' };
  const variants = [
    ['off', {}],
    ['on', on],
    ['off again', {}],
    ['on, nothing sampled', { ...on, OTEL_TRACES_SAMPLER: 'always_off' }],
  ] as const;
  const results: Record<string, Awaited<ReturnType<typeof httpLoad>>> = Object.create(null);
  try {
    for (const [name, env] of variants) {
      progress(`tracing: ${connections} connections, ${settings.apiSeconds} s, tracing ${name}`);
      const t = await freshDatabase();
      const api = await startApi(t.url, nextStream('tracing'), env);
      results[name] = await httpLoad(api, connections);
      await stopAll([api.proc]);
      await t.drop();
    }
  } finally {
    await otlp.close();
  }
  const us = (name: string) => results[name]?.serverCpuUs ?? Number.NaN;
  const off = Math.min(us('off'), us('off again'));
  details['tracing'] = { connections, results, spansReceived: otlp.spans.length };
  rows.push({
    scenario: `API CPU per order with trace export, ${connections} connections`,
    result:
      `API process CPU per order: off ${fmt(us('off'))} us and ${fmt(us('off again'))} us (spread ${fmt(Math.abs(us('off') - us('off again')))} us), ` +
      `on ${fmt(us('on'))} us (${fmt(results['on']?.ordersPerSecond ?? 0)} orders/s, ${fmt(otlp.spans.length)} spans received), ` +
      `SDK on sampling nothing ${fmt(us('on, nothing sampled'))} us`,
    baseline: `tracing off: ${fmt(off)} us/order (the lower of two runs), ${fmt(results['off']?.ordersPerSecond ?? 0)} orders/s`,
    ratio: us('on') / off,
    target: 'on / off: what tracing every request costs; off must cost nothing (no SDK loaded)',
    met: undefined,
    exactlyOnce: '-',
  });
}

/**
 * The raw publish ceiling: the drain's payloads published straight to JetStream with a msgID,
 * pipelined 500 deep, no database; once with nats.js's js.publish() and once with the relay's own
 * PubAckInbox. The faster is the baseline, so a cheaper client path in the relay cannot flatter it.
 */
async function rawPublishBaseline(nats: NatsServer, nc: NatsConnection, n: number) {
  const runs: Record<string, { eventsPerSecond: number; seconds: number; streamMessages: number }> = {};
  for (const mode of ['js', 'inbox']) {
    progress(
      `drain: baseline, ${fmt(n)} payloads published straight to JetStream (pipelined, msgID, ${mode})`,
    );
    const stream = nextStream(`raw${mode}`);
    await ensureStream(nc, stream);
    const run = await child<{ eventsPerSecond: number; seconds: number }>('publish-baseline', [
      nats.url,
      stream,
      n,
      500,
      mode,
    ]);
    runs[mode] = { ...run, streamMessages: await streamMessages(nc, stream) };
  }
  const js = runs['js']?.eventsPerSecond ?? 0;
  const inbox = runs['inbox']?.eventsPerSecond ?? 0;
  const eventsPerSecond = Math.max(js, inbox);
  return {
    eventsPerSecond,
    runs,
    label: `${fmt(eventsPerSecond)} events/s (raw pipelined publish, msgID, no database; the faster of js.publish ${fmt(js)} and PubAckInbox ${fmt(inbox)})`,
  };
}

async function scenarioDrain(nats: NatsServer, nc: NatsConnection): Promise<void> {
  const n = settings.drainRows;
  const baseline = await rawPublishBaseline(nats, nc, n);
  details['drain_baseline'] = baseline;

  for (const relays of [1, 2]) {
    const stream = nextStream(`drain${relays}`);
    const t = await freshDatabase();
    progress(`drain: loading ${fmt(n)} rows with no relay running`);
    await loadBacklog(t.db, stream, n);
    progress(`drain: ${relays} relay(s) draining`);
    const started = performance.now();
    const procs = await Promise.all(
      Array.from({ length: relays }, () => startRelay(t.url, nats.url, stream)),
    );
    const drain = await waitForDrain(nc, stream, n);
    await stopAll(procs);
    const check = await verifyExactlyOnce(nc, stream, t.db);
    await t.drop();
    // Timed from the first publish, as the baseline is timed from its connect: the relay's process
    // start (about 1 s of CPU here, mostly module loading) is reported beside it, not counted.
    const seconds = (drain.doneAt - drain.firstAt) / 1000;
    const fromStart = (drain.doneAt - started) / 1000;
    const eventsPerSecond = n / seconds;
    const ratio = eventsPerSecond / baseline.eventsPerSecond;
    details[`drain_${relays}`] = { seconds, fromStartSeconds: fromStart, eventsPerSecond, check };
    rows.push({
      scenario: `Relay drain, ${fmt(n)} rows, ${relays} relay${relays > 1 ? 's' : ''}`,
      result: `${fmt(eventsPerSecond)} events/s from the first publish (${fmt(seconds, 2)} s; ${fmt(n / fromStart)} events/s, ${fmt(fromStart, 2)} s from process start)`,
      baseline: baseline.label,
      ratio,
      target: relays === 1 ? '>= 0.7 (goal 0.9)' : 'faster than 1 relay when cores are left',
      met: relays === 1 ? ratio >= 0.7 : undefined,
      exactlyOnce: check.ok ? `ok (${fmt(check.rows)} events)` : `FAILED ${JSON.stringify(check)}`,
    });
  }
}

/**
 * The CPU budget of a drain: how much machine CPU each event costs for the database half alone
 * (the log read, no NATS), for the publish half alone (the raw baseline), and for the relay doing both;
 * then the drain rate the machine's cores could sustain at that cost, against the raw baseline. It
 * answers "could the relay reach 0.7 (goal 0.9) of the baseline here, with any code?".
 */
async function scenarioBudget(nats: NatsServer, nc: NatsConnection): Promise<void> {
  const n = settings.drainRows;
  const cores = os.cpus().length;
  progress(`budget: log read of ${fmt(n)} rows alone`);
  const t = await freshDatabase();
  const stream = nextStream('budgetrelay');
  await loadBacklog(t.db, stream, n);
  const database = await child<{ rowsPerSecond: number; machineCpu: number }>('log-read-baseline', [
    t.url,
    500,
  ]);
  progress(`budget: ${fmt(n)} payloads published alone`);
  const rawStream = nextStream('budgetraw');
  await ensureStream(nc, rawStream);
  // The publish half as the relay does it (PubAckInbox).
  const publish = await child<{ eventsPerSecond: number; machineCpu: number }>('publish-baseline', [
    nats.url,
    rawStream,
    n,
    500,
    'inbox',
  ]);
  progress(`budget: the relay draining ${fmt(n)} rows`);
  // The read above wrote nothing: the rows are still ahead of every cursor.
  await sql`VACUUM ANALYZE outbox`.execute(t.db);
  // Each half and the relay measured the same way: machine CPU from the first message to the last,
  // process starts left out (the relay's start is reported apart).
  const relay = await measureMachineCpu(async () => {
    const proc = await startRelay(t.url, nats.url, stream);
    const drain = await waitForDrain(nc, stream, n);
    await stopAll([proc]);
    return drain;
  });
  const check = await verifyExactlyOnce(nc, stream, t.db);
  await t.drop();
  const us = (cpu: number) => (cpu / n) * 1e6;
  const relayCpu = relay.result.cpuAfterFirst;
  const ceiling = (cores * n) / relayCpu;
  const ratio = relayCpu / publish.machineCpu;
  details['budget'] = {
    cores,
    logReadCpuUsPerEvent: us(database.machineCpu),
    publishCpuUsPerEvent: us(publish.machineCpu),
    relayCpuUsPerEvent: us(relayCpu),
    relayCpuUsPerEventFromStart: us(relay.cpu),
    relayEventsPerSecond: n / ((relay.result.doneAt - relay.result.firstAt) / 1000),
    cpuCeilingEventsPerSecond: ceiling,
    check,
  };
  rows.push({
    scenario: `Drain CPU budget, ${fmt(n)} rows, ${cores} cores`,
    result:
      `machine CPU per event: log read alone ${fmt(us(database.machineCpu), 1)} us, publish alone ${fmt(us(publish.machineCpu), 1)} us, ` +
      `relay (both) ${fmt(us(relayCpu), 1)} us from its first publish (${fmt(us(relay.cpu), 1)} us with its process start) ` +
      `-> at most ${fmt(ceiling)} events/s with every core busy`,
    baseline: `publish alone: ${fmt(us(publish.machineCpu), 1)} us per event, ${fmt(publish.eventsPerSecond)} events/s (raw pipelined publish, PubAckInbox)`,
    ratio,
    target: 'relay CPU / publish CPU <= 1.3',
    met: ratio <= 1.3,
    exactlyOnce: check.ok ? `ok (${fmt(check.rows)} events)` : `FAILED ${JSON.stringify(check)}`,
  });
}

/**
 * What interleaved events of one order cost the drain: ordering is structural (an order's events are
 * one partition's, read in order), so 4 events per order should drain as fast as 1 (target: within 5%).
 */
async function scenarioOrdering(nats: NatsServer, nc: NatsConnection): Promise<void> {
  const n = settings.drainRows;
  const measured: Record<number, number> = {};
  for (const perAggregate of [1, 4]) {
    const stream = nextStream(`ord${perAggregate}`);
    const t = await freshDatabase();
    progress(`ordering: ${fmt(n)} rows, ${perAggregate} event(s) per aggregate`);
    await loadBacklog(t.db, stream, n, perAggregate);
    const proc = await startRelay(t.url, nats.url, stream);
    const drain = await waitForDrain(nc, stream, n);
    const seconds = (drain.doneAt - drain.firstAt) / 1000; // from the first publish, as the drain scenario
    await stopAll([proc]);
    const check = await verifyExactlyOnce(nc, stream, t.db);
    await t.drop();
    measured[perAggregate] = n / seconds;
    details[`ordering_${perAggregate}`] = { seconds, eventsPerSecond: n / seconds, check };
    if (!check.ok) throw new Error(`ordering scenario: exactly-once failed ${JSON.stringify(check)}`);
  }
  const ratio = (measured[4] ?? 0) / (measured[1] ?? 1);
  rows.push({
    scenario: `Interleaved events per order, drain of ${fmt(n)} rows, 1 relay`,
    result: `${fmt(measured[4] ?? 0)} events/s with 4 events per order, interleaved`,
    baseline: `${fmt(measured[1] ?? 0)} events/s with one event per order`,
    ratio,
    target: '>= 0.95',
    met: ratio >= 0.95,
    exactlyOnce: `ok (${fmt(n)} events, twice)`,
  });
}

/**
 * From the API's /metrics: the POST /orders duration histogram (counts since `since`, an earlier read;
 * the percentiles are the upper bounds of the buckets that hold them) and the event loop's delay p99
 * since the previous read.
 */
async function apiMetrics(url: string, since?: { buckets: { le: number; count: number }[] }) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = [
    ...text.matchAll(
      /^http_request_duration_seconds_bucket\{le="([^"]+)",method="POST",route="\/orders",status="201"\} (\d+)$/gm,
    ),
  ].map((m, i) => ({ le: Number(m[1]), count: Number(m[2]) - (since?.buckets[i]?.count ?? 0) }));
  const total = buckets.at(-1)?.count ?? 0;
  const bound = (q: number) => (buckets.find((b) => b.count >= q * total)?.le ?? Number.NaN) * 1000;
  return {
    buckets,
    postP50Ms: bound(0.5),
    postP99Ms: bound(0.99),
    eventLoopP99Ms: Number(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1] ?? Number.NaN) * 1000,
  };
}

async function scenarioLatency(nats: NatsServer, nc: NatsConnection): Promise<void> {
  // Through the API with and without the wake-up, then straight into PostgreSQL with no HTTP in front:
  // the last separates the relay's part from the API's own queueing when the API is near its ceiling.
  const variants = [
    { http: true, listen: true },
    { http: true, listen: false },
    { http: false, listen: true },
  ];
  for (const rate of settings.latencyRates) {
    for (const { http, listen } of variants) {
      const stream = nextStream(`lat${rate}${http ? 'h' : 'd'}${listen ? 'n' : 'p'}`);
      const how = `${http ? '' : 'inserted straight into PostgreSQL (no HTTP), '}${listen ? 'LISTEN/NOTIFY' : 'poll only (1 s)'}`;
      progress(`latency: ${rate} orders/s for ${settings.latencySeconds} s, ${how}`);
      const t = await freshDatabase();
      const api = http ? await startApi(t.url, stream) : undefined;
      const load = (seconds: number) =>
        api
          ? child<LoadResult>('steady-load', [api.url, rate, seconds])
          : child<LoadResult>('steady-insert', [t.url, stream, rate, seconds]);
      const relay = await startRelay(t.url, nats.url, stream, { RELAY_LISTEN: String(listen) });
      await waitUntil(
        async () =>
          (await streamMessages(nc, stream)) >= 0 &&
          (await (await nc.jetstreamManager()).streams.info(stream).then(
            () => true,
            () => false,
          )),
        15_000,
        50,
      );
      // Warm up (connection pools, prepared statements, JIT) at the same rate before measuring.
      await load(2);
      await waitUntil(() => drained(t.db), 60_000, 20);
      const warmed = await streamMessages(nc, stream);
      const latencies: number[] = [];
      // Where the time goes: created_at (set by the API just before its statement, so it includes the
      // statement's own wait and commit) to JetStream's store timestamp, then on to the consumer.
      const toStored: number[] = [];
      const consumer = await nc.jetstream().consumers.get(stream, { deliver_policy: DeliverPolicy.New });
      const sub = await consumer.consume({
        max_messages: 1000,
        callback: (m: JsMsg) => {
          const createdAt = Date.parse((m.json() as { created_at: string }).created_at);
          latencies.push(Date.now() - createdAt);
          toStored.push(m.info.timestampNanos / 1e6 - createdAt);
        },
      });
      // Reading /metrics resets prom-client's event-loop delay summary, so the next read covers the load.
      const before = api ? await apiMetrics(api.url) : undefined;
      const { result, cpu, wall } = await measureMachineCpu(() => load(settings.latencySeconds));
      const machineBusy = cpu / (os.cpus().length * wall);
      const server = api ? await apiMetrics(api.url, before) : undefined;
      await waitUntil(() => drained(t.db), 60_000, 20);
      await waitUntil(
        async () => latencies.length >= (await streamMessages(nc, stream)) - warmed,
        30_000,
        20,
      ).catch(() => {});
      await sub.close();
      await stopAll(api ? [api.proc, relay] : [relay]);
      const check = await verifyExactlyOnce(nc, stream, t.db);
      await t.drop();
      latencies.sort((a, b) => a - b);
      toStored.sort((a, b) => a - b);
      const stages = {
        machineBusy,
        api: server && {
          postP50Ms: server.postP50Ms,
          postP99Ms: server.postP99Ms,
          eventLoopP99Ms: server.eventLoopP99Ms,
        },
        writes: { p50: result.p50, p99: result.p99 },
        createdToStored: { p50: percentile(toStored, 50), p99: percentile(toStored, 99) },
      };
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      const max = latencies.at(-1) ?? Number.NaN;
      details[`latency_${rate}_${http ? 'http' : 'direct'}_${listen ? 'notify' : 'poll'}`] = {
        offered: rate,
        http,
        achieved: result.ordersPerSecond,
        events: latencies.length,
        p50,
        p99,
        max,
        stages,
        check,
      };
      rows.push({
        scenario: `Commit to stream, ${rate} orders/s offered, ${how}`,
        result:
          `p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms, max ${fmt(max)} ms (${fmt(result.ordersPerSecond)} orders/s achieved); ` +
          `p50/p99 from created_at to the stream's store time  ${fmt(stages.createdToStored.p50)}/${fmt(stages.createdToStored.p99)} ms; ` +
          `the ${http ? 'POSTs' : 'inserts'} themselves ${fmt(result.p50)}/${fmt(result.p99)} ms` +
          (server
            ? ` (in the API, from its histogram: p50 <= ${fmt(server.postP50Ms, 1)}, p99 <= ${fmt(server.postP99Ms, 1)} ms; event-loop delay p99 ${fmt(server.eventLoopP99Ms, 1)} ms)`
            : '') +
          `; machine CPU ${fmt(machineBusy * 100)}% busy` +
          (result.non2xx > 0 ? `; failed: ${JSON.stringify(result.failed)}` : ''),
        baseline: http && listen ? 'the poll-only row below' : '-',
        ratio: undefined,
        target: http && listen && rate === 1000 ? 'p50 <= 5 ms, p99 <= 25 ms' : '-',
        met: http && listen && rate === 1000 ? p50 <= 5 && p99 <= 25 : undefined,
        exactlyOnce: check.ok ? `ok (${fmt(check.rows)} events)` : `FAILED ${JSON.stringify(check)}`,
      });
    }
  }
}

/**
 * Orders through the API at a steady rate for `seconds`, with something held open elsewhere on the
 * server while they arrive; samples the backlog (oldest pending age, pending rows) and the outbox's
 * dead tuples every 2 s, and times each event from created_at to its arrival in the stream.
 */
async function steadyWithHeld(
  nats: NatsServer,
  nc: NatsConnection,
  options: {
    name: string;
    rate: number;
    seconds: number;
    hold?: (dbUrl: string) => Promise<() => Promise<void>>;
  },
) {
  const stream = nextStream(options.name);
  const t = await freshDatabase();
  const api = await startApi(t.url, stream);
  const relay = await startRelay(t.url, nats.url, stream);
  await waitUntil(
    async () =>
      (await nc.jetstreamManager()).streams.info(stream).then(
        () => true,
        () => false,
      ),
    15_000,
    50,
  );
  await child<LoadResult>('steady-load', [api.url, options.rate, 2]);
  await waitUntil(() => drained(t.db), 60_000, 20);
  const latencies: number[] = [];
  const consumer = await nc.jetstream().consumers.get(stream, { deliver_policy: DeliverPolicy.New });
  const sub = await consumer.consume({
    max_messages: 1000,
    callback: (m: JsMsg) => {
      latencies.push(Date.now() - Date.parse((m.json() as { created_at: string }).created_at));
    },
  });
  const release = options.hold ? await options.hold(t.url) : async () => {};
  const samples: { ageS: number; pending: number; deadTuples: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const backlog = await outboxBacklog(t.db);
      const dead = await sql<{ n: string }>`
        SELECT n_dead_tup AS n FROM pg_stat_user_tables WHERE relname = 'outbox'`.execute(t.db);
      samples.push({
        ageS: backlog.oldestAgeSeconds,
        pending: backlog.pending,
        deadTuples: Number(dead.rows[0]?.n ?? 0),
      });
      await sleep(2000);
    }
  })();
  const result = await child<LoadResult>('steady-load', [api.url, options.rate, options.seconds]);
  sampling = false;
  await sampler;
  await release();
  await waitUntil(() => drained(t.db), 120_000, 20);
  await waitUntil(async () => latencies.length >= result.requests - result.non2xx, 30_000, 20).catch(
    () => {},
  );
  await sub.close();
  await stopAll([api.proc, relay]);
  const check = await verifyExactlyOnce(nc, stream, t.db);
  await t.drop();
  latencies.sort((a, b) => a - b);
  const third = Math.max(1, Math.floor(samples.length / 3));
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    result,
    check,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    maxAgeS: Math.max(0, ...samples.map((x) => x.ageS)),
    firstThirdAgeS: mean(samples.slice(0, third).map((x) => x.ageS)),
    lastThirdAgeS: mean(samples.slice(-third).map((x) => x.ageS)),
    maxPending: Math.max(0, ...samples.map((x) => x.pending)),
    deadTuplesStart: samples[0]?.deadTuples ?? 0,
    deadTuplesEnd: samples.at(-1)?.deadTuples ?? 0,
    samples: samples.length,
  };
}

/** An idle REPEATABLE READ transaction that has read a table: an old snapshot, holding back vacuum. */
async function holdOldSnapshot(dbUrl: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await client.query('SELECT count(*) FROM orders');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}

/** A write transaction left open in another database of the same server (its xid in every snapshot). */
async function holdWriteElsewhere(): Promise<() => Promise<void>> {
  const name = uniqueDatabaseName('bench_other');
  await adminQuery(ADMIN_URL, [`CREATE DATABASE "${name}"`]);
  const client = new pg.Client({ connectionString: databaseUrl(ADMIN_URL, name) });
  await client.connect();
  await client.query('BEGIN');
  await client.query('CREATE TABLE held (n int)');
  await client.query('INSERT INTO held VALUES (1)');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
    await adminQuery(ADMIN_URL, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
  };
}

/**
 * Long transactions elsewhere on the server: an old snapshot held open for the whole run at 800
 * orders/s (6 minutes with --full), and a write transaction open in another database at 200 orders/s
 * (2 minutes with --full), each beside the same load without it.
 */
async function scenarioHeld(nats: NatsServer, nc: NatsConnection): Promise<void> {
  const snapshotSeconds = quick ? 60 : 360;
  const otherSeconds = quick ? 30 : 120;
  const runs = {} as Record<string, Awaited<ReturnType<typeof steadyWithHeld>>>;
  for (const held of [false, true]) {
    progress(
      `held: 800 orders/s for ${snapshotSeconds} s, ${held ? 'an old snapshot held open' : 'nothing held'}`,
    );
    runs[`snapshot_${held}`] = await steadyWithHeld(nats, nc, {
      name: `held${held ? 's' : 'n'}`,
      rate: 800,
      seconds: snapshotSeconds,
      ...(held ? { hold: holdOldSnapshot } : {}),
    });
  }
  for (const held of [false, true]) {
    progress(
      `held: 200 orders/s for ${otherSeconds} s, ${held ? 'a write transaction open in another database' : 'nothing held'}`,
    );
    runs[`other_${held}`] = await steadyWithHeld(nats, nc, {
      name: `other${held ? 'w' : 'n'}`,
      rate: 200,
      seconds: otherSeconds,
      ...(held ? { hold: () => holdWriteElsewhere() } : {}),
    });
  }
  details['held'] = runs;
  const s0 = runs['snapshot_false'];
  const s1 = runs['snapshot_true'];
  const o0 = runs['other_false'];
  const o1 = runs['other_true'];
  if (!s0 || !s1 || !o0 || !o1) return;
  const describe = (r: typeof s0) =>
    `oldest pending age max ${fmt(r.maxAgeS, 2)} s (first third ${fmt(r.firstThirdAgeS, 3)}, last third ${fmt(r.lastThirdAgeS, 3)}), ` +
    `pending max ${fmt(r.maxPending)}, outbox dead tuples ${fmt(r.deadTuplesStart)} -> ${fmt(r.deadTuplesEnd)}, ` +
    `commit to stream p50 ${fmt(r.p50)} / p99 ${fmt(r.p99)} ms (${fmt(r.result.ordersPerSecond)} orders/s achieved)`;
  const flat = (r: typeof s0) => r.lastThirdAgeS <= Math.max(0.05, 2 * r.firstThirdAgeS);
  rows.push({
    scenario: `Old snapshot held open (idle REPEATABLE READ) for ${snapshotSeconds} s, 800 orders/s through the API`,
    result: describe(s1),
    baseline: describe(s0),
    ratio: undefined,
    target: 'age < 1 s, no rising trend, dead tuples not growing with events',
    met: s1.maxAgeS < 1 && flat(s1) && s1.deadTuplesEnd - s1.deadTuplesStart < s1.result.requests / 100,
    exactlyOnce:
      s1.check.ok && s0.check.ok
        ? `ok (${fmt(s1.check.rows)} events)`
        : `FAILED ${JSON.stringify([s0.check, s1.check])}`,
  });
  rows.push({
    scenario: `Write transaction open in another database for ${otherSeconds} s, 200 orders/s through the API`,
    result: describe(o1),
    baseline: describe(o0),
    ratio: o1.p99 / Math.max(1, o0.p99),
    target: 'p99 within 2x of the run without it',
    met: o1.p99 <= 2 * Math.max(1, o0.p99),
    exactlyOnce:
      o1.check.ok && o0.check.ok
        ? `ok (${fmt(o1.check.rows)} events)`
        : `FAILED ${JSON.stringify([o0.check, o1.check])}`,
  });
}

async function scenarioPeer(nats: NatsServer, nc: NatsConnection): Promise<void> {
  const peerModule = path.join(REPO_ROOT, 'bench/dist/peer.js');
  if (!existsSync(peerModule)) {
    progress('peer: bench/dist/peer.js is not built; skipped');
    return;
  }
  const { runPeerDrain } = (await import(peerModule)) as {
    runPeerDrain: (o: {
      adminUrl: string;
      natsUrl: string;
      stream: string;
      rows: number;
      payloads: (i: number) => string;
      onProgress?: (done: number) => void;
    }) => Promise<{
      library: string;
      mode: string;
      eventsPerSecond: number;
      streamMessages: number;
      duplicates: number;
      completed: boolean;
      seconds: number;
    }>;
  };
  const n = settings.drainRows;
  const ours = details['drain_1'] as { eventsPerSecond: number } | undefined;
  progress(`peer: pg-transactional-outbox draining ${fmt(n)} rows`);
  const stream = nextStream('peer');
  const peer = await runPeerDrain({
    adminUrl: ADMIN_URL,
    natsUrl: nats.url,
    stream,
    rows: n,
    payloads: eventPayload,
    onProgress: (done) => progress(`peer: ${fmt(done)} / ${fmt(n)}`),
  });
  details['peer'] = peer;
  const ratio = ours ? ours.eventsPerSecond / peer.eventsPerSecond : undefined;
  rows.push({
    scenario: `Peer: ${peer.library} drain, ${fmt(n)} rows`,
    result:
      `${fmt(peer.eventsPerSecond)} events/s (${peer.mode})` +
      (peer.completed
        ? ''
        : `; stopped at its time cap, ${fmt(peer.seconds)} s, with ${fmt(peer.streamMessages)} published`),
    baseline: ours ? `ours: ${fmt(ours.eventsPerSecond)} events/s (1 relay)` : '-',
    ratio,
    target: 'ours / peer >= 5',
    met: ratio === undefined ? undefined : ratio >= 5,
    exactlyOnce: `${fmt(peer.streamMessages)} messages, ${peer.duplicates} duplicates`,
  });
  void nc;
}

/**
 * What the inbox costs a consumer: the same consumer and handler (one upsert) draining the same events,
 * with the inbox write and without it, alternated twice (A B B A) in one run; the median of each.
 * Target: with the inbox at least 0.7 of the rate without.
 */
async function scenarioConsumer(nats: NatsServer, nc: NatsConnection): Promise<void> {
  const n = settings.consumerEvents;
  const stream = nextStream('consumer');
  const name = uniqueDatabaseName('bench_consumer');
  await adminQuery(ADMIN_URL, [`CREATE DATABASE "${name}"`]);
  const url = databaseUrl(ADMIN_URL, name);
  const db = createDb({ url, poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 60_000 });
  try {
    await migrateToLatest(db, { sources: [OUTBOX_MIGRATIONS, CONSUMER_MIGRATIONS] });
    await sql`CREATE TABLE bench_counts (key text PRIMARY KEY, n bigint NOT NULL)`.execute(db);
    await ensureStream(nc, stream);
    progress(`consumer: publishing ${fmt(n)} events`);
    const js = nc.jetstream();
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, n - i) }, (_, j) =>
          js.publish(
            `${stream}.order_created`,
            new TextEncoder().encode(JSON.stringify({ key: `k${(i + j) % 100}`, i: i + j })),
            {
              msgID: crypto.randomUUID(),
            },
          ),
        ),
      );
    }
    type Run = { eventsPerSecond: number; seconds: number; dedupe: boolean };
    const runs: Run[] = [];
    for (const [k, dedupe] of [true, false, false, true].entries()) {
      progress(`consumer: drain ${k + 1} of 4, ${dedupe ? 'with' : 'without'} the inbox`);
      runs.push(
        await child<Run>('consumer-throughput', [url, nats.url, stream, `bench_${k}`, n, String(dedupe)]),
      );
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2
        ? (s[(s.length - 1) / 2] ?? 0)
        : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2;
    };
    const withInbox = median(runs.filter((r) => r.dedupe).map((r) => r.eventsPerSecond));
    const without = median(runs.filter((r) => !r.dedupe).map((r) => r.eventsPerSecond));
    const { rows: inbox } = await sql<{ n: string }>`SELECT count(*) AS n FROM consumer_inbox`.execute(db);
    const { rows: counted } = await sql<{ n: string }>`SELECT sum(n) AS n FROM bench_counts`.execute(db);
    // Two drains with the inbox: each id recorded once per durable; four drains ran the handler n times each.
    const ok = Number(inbox[0]?.n) === 2 * n && Number(counted[0]?.n) === 4 * n;
    details['consumer'] = {
      n,
      runs,
      withInbox,
      without,
      inboxRows: Number(inbox[0]?.n),
      handlerRuns: Number(counted[0]?.n),
    };
    const ratio = withInbox / without;
    rows.push({
      scenario: `Consumer throughput, ${fmt(n)} events, one upsert per event, max_ack_pending 1`,
      result: `${fmt(withInbox)} events/s with the inbox`,
      baseline: `${fmt(without)} events/s without the inbox write`,
      ratio,
      target: '>= 0.7',
      met: ratio >= 0.7,
      exactlyOnce: ok ? `ok (${fmt(n)} inbox rows per inbox drain)` : 'FAILED: inbox or handler counts off',
    });
  } finally {
    await db.destroy();
    await adminQuery(ADMIN_URL, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
  }
}

// ---------------------------------------------------------------------------------------------- run
function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? '?';
  } catch {
    return '?';
  }
}
const machine = {
  date: new Date().toISOString(),
  host: os.hostname(),
  cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  postgres: version('psql', ['--version']),
  natsServer: version('nats-server', ['--version']),
};
progress(`mode ${settings.mode}; ${machine.cpus}; node ${machine.node}`);

const nats = await startNatsServer();
const nc = await connect({ servers: nats.url });
try {
  if (settings.only.has('api')) await scenarioApi(nats, nc);
  if (settings.only.has('tracing')) await scenarioTracing();
  if (settings.only.has('drain')) await scenarioDrain(nats, nc);
  if (settings.only.has('ordering')) await scenarioOrdering(nats, nc);
  if (settings.only.has('budget')) await scenarioBudget(nats, nc);
  if (settings.only.has('latency')) await scenarioLatency(nats, nc);
  if (settings.only.has('held')) await scenarioHeld(nats, nc);
  if (settings.only.has('peer')) await scenarioPeer(nats, nc);
  if (settings.only.has('consumer')) await scenarioConsumer(nats, nc);
} finally {
  await nc.close();
  await nats.dispose();
  await dropTemplate();
}

const table = [
  '| scenario | result | same-run baseline | ratio | target | met | exactly once |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${r.result} | ${r.baseline} | ${r.ratio === undefined ? '-' : r.ratio.toFixed(2)} | ${r.target} | ${r.met === undefined ? '-' : r.met ? 'yes' : 'no'} | ${r.exactlyOnce} |`,
  ),
].join('\n');
const header = `Benchmark (${settings.mode}) on ${machine.cpus}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.postgres}, ${machine.natsServer}, ${machine.date}`;
process.stdout.write(`\n${header}\n\n${table}\n`);
const dir = path.join(REPO_ROOT, 'bench/results');
await mkdir(dir, { recursive: true });
const file = path.join(dir, `${machine.date.replace(/[:.]/g, '-')}-${settings.mode}.json`);
await writeFile(
  file,
  `${JSON.stringify({ machine, settings: { ...settings, only: [...settings.only] }, rows, details }, null, 2)}\n`,
);
progress(`results written to ${path.relative(REPO_ROOT, file)}`);
if (rows.some((r) => r.exactlyOnce.startsWith('FAILED'))) process.exitCode = 1;
