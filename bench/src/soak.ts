// `pnpm soak [--short] [--duration S] [--rate N] [--kill-every S] [--out DIR]`
//
// Soak under relay crashes: its own nats-server and a fresh database, the built API and one relay; a
// steady open-loop POST /orders load at `rate` for `duration` seconds while the relay is SIGKILLed every
// `kill-every` seconds and a new one started at once. Samples every 5 s (API latency of the requests
// completed in the interval, non-2xx, outbox_pending, RSS of the API and of the current relay), then
// waits for the backlog to drain and checks that every outbox row is in the stream exactly once.
// Prints a markdown summary to stdout, progress to stderr, writes <out>/soak-<date>.json and .html.
// Exits 1 when exactly-once fails, on any non-2xx, or when the API's RSS high-water mark rose by more than
// 50% from the first half of the load to the second.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { outboxBacklog } from '@orders/db';
import { metricValue, REPO_ROOT, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { connect } from 'nats';
import { numberOption, parseCommandLine, usageError } from './args.js';
import {
  dropTemplate,
  type ExactlyOnce,
  freshDatabase,
  rssBytes,
  startApi,
  startRelay,
  stopAll,
  unpublished,
  verifyExactlyOnce,
  waitUntil,
} from './harness.js';
import { percentile, seedOrder } from './payload.js';
import { soakHtml } from './soak-html.js';

// ---------------------------------------------------------------------------------------------- options
const USAGE = 'soak [--short] [--duration S >= 15] [--rate N > 0] [--kill-every S, 0 = never] [--out DIR]';
const args = parseCommandLine(USAGE, {
  short: { type: 'boolean' },
  duration: { type: 'string' },
  rate: { type: 'string' },
  'kill-every': { type: 'string' },
  out: { type: 'string' },
});
const short = args.short === true;
const settings = {
  durationS: numberOption(USAGE, 'duration', args.duration, short ? 60 : 600, 15),
  rate: numberOption(USAGE, 'rate', args.rate, 200),
  killEveryS: numberOption(USAGE, 'kill-every', args['kill-every'], short ? 15 : 60),
  out: path.resolve(REPO_ROOT, args.out ?? 'docs/soak'),
};
const SAMPLE_S = 5;
const WARMUP_S = 10;
const RSS_GROWTH_BOUND = 0.5;
const DRAIN_TIMEOUT_MS = 300_000;
if (!(settings.rate > 0)) usageError(USAGE, `--rate: ${settings.rate} is not above 0`);
for (const entry of ['apps/api/dist/main.js', 'apps/relay/dist/main.js']) {
  if (!existsSync(path.join(REPO_ROOT, entry))) {
    console.error(`${entry} is missing: run \`pnpm build\` first`);
    process.exit(2);
  }
}

const progress = (msg: string) =>
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n)
    ? '-'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 2 ** 20);
const sleepUntil = (at: number) => sleep(Math.max(0, at - performance.now()));

const machine = {
  date: new Date().toISOString(),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
};
progress(
  `${settings.durationS} s at ${settings.rate} orders/s, relay SIGKILLed every ${settings.killEveryS || '-'} s; ${machine.cpus}; node ${machine.node}`,
);

// ---------------------------------------------------------------------------------------------- setup
const stream = `soak_${process.pid}`;
const nats = await startNatsServer();
const nc = await connect({ servers: nats.url });
const database = await freshDatabase('soak', 2);
const api = await startApi(database.url, stream);
const failures: string[] = [];

let relay = await startRelay(database.url, nats.url, stream);
const killed = new Set<number>();
const relayPids: number[] = [];
const relayBorn = new Map<number, number>();
/** Watches a relay: an exit we did not cause is a failure, and a new relay replaces it. */
function watchRelay(r: typeof relay): void {
  relayPids.push(r.proc.pid);
  relayBorn.set(r.proc.pid, performance.now());
  void r.proc.exited.then(async ({ code, signal }) => {
    if (killed.has(r.proc.pid) || stopping) return;
    failures.push(`relay ${r.proc.pid} exited on its own (code ${code}, signal ${signal})`);
    progress(
      `relay ${r.proc.pid} exited on its own (code ${code}, signal ${signal}): ${r.proc.stderr.join(' | ')}`,
    );
    if (relay === r) {
      relay = await startRelay(database.url, nats.url, stream);
      watchRelay(relay);
    }
  });
}
let stopping = false;
watchRelay(relay);
void api.proc.exited.then(({ code, signal }) => {
  if (!stopping) failures.push(`the API exited during the run (code ${code}, signal ${signal})`);
});
await waitUntil(
  async () => (await fetch(`${relay.url}/ready`).catch(() => undefined))?.ok === true,
  30_000,
  50,
);

const cleanup = async () => {
  stopping = true;
  await stopAll([api.proc, relay.proc]);
  await nc.close().catch(() => {});
  await nats.dispose();
  await database.drop();
  await dropTemplate();
};
// Whatever ends this process (a failure included), its children do not outlive it.
process.once('exit', () => {
  if (stopping) return;
  api.proc.kill('SIGKILL');
  relay.proc.kill('SIGKILL');
  void nats.stop({ kill: true });
});
process.once('SIGINT', () => {
  progress('interrupted: stopping');
  void cleanup().finally(() => process.exit(130));
});

// ---------------------------------------------------------------------------------------------- load
// Open loop, as bench/src/steady-load.ts: requests leave on schedule whether or not earlier ones have
// answered. Each completion lands in the bucket of the interval it completed in.
interface Bucket {
  latencies: number[];
  non2xx: number;
}
const newBucket = (): Bucket => ({ latencies: [], non2xx: 0 });
let bucket = newBucket();
const allLatencies: number[] = [];
const statuses = new Map<string, number>();
const body = JSON.stringify(seedOrder());
const inFlight = new Set<Promise<void>>();
let sent = 0;

function fire(): void {
  const t0 = performance.now();
  const p = fetch(`${api.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(10_000),
  })
    .then(async (res) => {
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) {
        const ms = performance.now() - t0;
        bucket.latencies.push(ms);
        allLatencies.push(ms);
      } else {
        bucket.non2xx++;
        statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
      }
    })
    .catch((err: unknown) => {
      bucket.non2xx++;
      const kind = `network: ${err instanceof Error ? err.name : String(err)}`;
      statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
    })
    .finally(() => inFlight.delete(p));
  inFlight.add(p);
  sent++;
}

const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1000;
const total = Math.floor(settings.durationS * settings.rate);
const load = new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const due = Math.min(total, Math.floor(elapsedS() * settings.rate));
    while (sent < due) fire();
    if (sent >= total) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
}).then(() => Promise.all(inFlight));

// ---------------------------------------------------------------------------------------------- relay kills
const kills: { t: number; killed: number; started: number }[] = [];
const killer = (async () => {
  for (let k = 1; settings.killEveryS > 0 && k * settings.killEveryS < settings.durationS; k++) {
    await sleepUntil(started + k * settings.killEveryS * 1000);
    const old = relay;
    killed.add(old.proc.pid);
    old.proc.kill('SIGKILL');
    const t = elapsedS();
    relay = await startRelay(database.url, nats.url, stream);
    watchRelay(relay);
    kills.push({ t, killed: old.proc.pid, started: relay.proc.pid });
    progress(`t=${t.toFixed(1)} s: relay ${old.proc.pid} SIGKILLed, relay ${relay.proc.pid} started`);
    const exit = await old.proc.exited;
    if (exit.signal !== 'SIGKILL') failures.push(`relay ${old.proc.pid} ended with ${JSON.stringify(exit)}`);
  }
})();

// ---------------------------------------------------------------------------------------------- sampling
interface Sample {
  t: number;
  phase: 'load' | 'drain' | 'end';
  requests: number;
  p50Ms: number | null;
  p99Ms: number | null;
  non2xx: number;
  pending: number | null;
  pendingFrom: 'metrics' | 'sql';
  apiRssBytes: number | null;
  /** V8 heap of the API (from its own /metrics): tells heap growth until a full GC from a leak. */
  apiHeapTotalBytes: number | null;
  apiHeapUsedBytes: number | null;
  relayRssBytes: number | null;
  relayPid: number;
  relayAgeS: number;
}
const samples: Sample[] = [];
/** Last outbox_duplicates_total scraped from each relay (a killed relay's last increments are lost). */
const duplicatesByRelay = new Map<number, number>();

async function pendingOf(r: typeof relay): Promise<{ pending: number | null; from: 'metrics' | 'sql' }> {
  const text = await fetch(`${r.url}/metrics`, { signal: AbortSignal.timeout(1000) })
    .then((res) => (res.ok ? res.text() : undefined))
    .catch(() => undefined);
  const pending = text === undefined ? undefined : metricValue(text, 'outbox_pending');
  const dups = text === undefined ? undefined : metricValue(text, 'outbox_duplicates_total');
  if (dups !== undefined) duplicatesByRelay.set(r.proc.pid, dups);
  if (pending !== undefined) return { pending, from: 'metrics' };
  // The relay is restarting (not listening yet): the same count, from the database.
  const backlog = await outboxBacklog(database.db).catch(() => undefined);
  return { pending: backlog?.pending ?? null, from: 'sql' };
}

async function apiHeap(): Promise<{ total: number | null; used: number | null }> {
  const text = await fetch(`${api.url}/metrics`, { signal: AbortSignal.timeout(1000) })
    .then((res) => (res.ok ? res.text() : undefined))
    .catch(() => undefined);
  const value = (name: string) => (text === undefined ? undefined : metricValue(text, name)) ?? null;
  return { total: value('nodejs_heap_size_total_bytes'), used: value('nodejs_heap_size_used_bytes') };
}

async function takeSample(phase: Sample['phase']): Promise<Sample> {
  const b = bucket;
  bucket = newBucket();
  const t = elapsedS();
  const current = relay;
  const [pending, apiRss, relayRss, heap] = await Promise.all([
    pendingOf(current),
    rssBytes(api.proc.pid),
    rssBytes(current.proc.pid),
    apiHeap(),
  ]);
  const sorted = b.latencies.sort((x, y) => x - y);
  const sample: Sample = {
    t: Math.round(t * 10) / 10,
    phase,
    requests: sorted.length + b.non2xx,
    p50Ms: sorted.length ? percentile(sorted, 50) : null,
    p99Ms: sorted.length ? percentile(sorted, 99) : null,
    non2xx: b.non2xx,
    pending: pending.pending,
    pendingFrom: pending.from,
    apiRssBytes: apiRss ?? null,
    apiHeapTotalBytes: heap.total,
    apiHeapUsedBytes: heap.used,
    relayRssBytes: relayRss ?? null,
    relayPid: current.proc.pid,
    relayAgeS: Math.round((performance.now() - (relayBorn.get(current.proc.pid) ?? 0)) / 100) / 10,
  };
  progress(
    `t=${fmt(sample.t).padStart(4)} s ${phase.padEnd(5)} req ${fmt(sample.requests).padStart(5)}  p50 ${fmt(sample.p50Ms ?? undefined, 1)} ms  p99 ${fmt(sample.p99Ms ?? undefined, 1)} ms  non-2xx ${sample.non2xx}  pending ${fmt(sample.pending ?? undefined)} (${sample.pendingFrom})  RSS api ${fmt(mib(apiRss), 1)} MiB (V8 heap ${fmt(mib(heap.total ?? undefined), 1)}), relay ${current.proc.pid} ${fmt(mib(relayRss), 1)} MiB`,
  );
  return sample;
}

let sampling = true;
const sampler = (async () => {
  for (let k = 1; sampling; k++) {
    await sleepUntil(started + k * SAMPLE_S * 1000);
    if (!sampling) break;
    samples.push(await takeSample(k * SAMPLE_S <= settings.durationS ? 'load' : 'drain'));
  }
})();

// ---------------------------------------------------------------------------------------------- run
await load;
await killer;
const loadEnd = elapsedS();
progress(`load done: ${fmt(sent)} requests in ${loadEnd.toFixed(1)} s; waiting for the backlog to drain`);
let drainS: number | undefined;
try {
  await waitUntil(async () => (await unpublished(database.db)) === 0, DRAIN_TIMEOUT_MS, 100);
  drainS = elapsedS() - loadEnd;
} catch {
  failures.push(`the backlog did not drain within ${DRAIN_TIMEOUT_MS / 1000} s of the end of the load`);
}
sampling = false;
await sampler;
const last = await takeSample('end');
samples.push(last);
await pendingOf(relay); // last duplicates count of the last relay

stopping = true;
await stopAll([api.proc, relay.proc]);
progress('verifying exactly once: reading the stream back');
const check: ExactlyOnce = await verifyExactlyOnce(nc, stream, database.db);
const orders = Number(
  (await sql<{ n: string }>`SELECT count(*) AS n FROM orders`.execute(database.db)).rows[0]?.n ?? 0,
);
await nc.close();
await nats.dispose();
await database.drop();
await dropTemplate();

// ---------------------------------------------------------------------------------------------- results
const ok2xx = allLatencies.length;
const non2xx = sent - ok2xx;
allLatencies.sort((a, b) => a - b);
const loadSamples = samples.filter((s) => s.phase === 'load');
const apiStartSample = loadSamples.find((s) => s.t >= WARMUP_S - 0.5);
const apiEndSample = loadSamples.at(-1);
const apiStart = apiStartSample?.apiRssBytes ?? undefined;
const apiEnd = apiEndSample?.apiRssBytes ?? undefined;
const apiRssAfterWarmup = loadSamples.flatMap((s) =>
  s.t >= WARMUP_S - 0.5 && s.apiRssBytes !== null ? [s.apiRssBytes] : [],
);
// Node's RSS is a sawtooth (the heap grows until a major collection, then drops), so two single
// samples say little. A leak shows as the high-water mark rising: compare the highest RSS of the second
// half of the load (after warm-up) with the highest of the first half.
const afterWarmup = loadSamples.filter((s) => s.t >= WARMUP_S - 0.5 && s.apiRssBytes !== null);
const half = Math.floor(afterWarmup.length / 2);
const highest = (list: typeof afterWarmup) => Math.max(0, ...list.map((s) => s.apiRssBytes ?? 0));
const firstHalfMax = highest(afterWarmup.slice(0, half));
const secondHalfMax = highest(afterWarmup.slice(half));
const apiGrowth = firstHalfMax > 0 && secondHalfMax > 0 ? secondHalfMax / firstHalfMax - 1 : undefined;
const lastRelay = last.relayPid;
// The last relay's own warm-up: its first sample at least WARMUP_S after it started.
const relayStartSample =
  samples.find(
    (s) => s.relayPid === lastRelay && s.relayRssBytes !== null && s.relayAgeS >= WARMUP_S - 0.5,
  ) ?? samples.find((s) => s.relayPid === lastRelay && s.relayRssBytes !== null);
const relayStart = relayStartSample?.relayRssBytes ?? undefined;
const relayEnd = last.relayRssBytes ?? undefined;
const maxPending = Math.max(0, ...samples.map((s) => s.pending ?? 0));
const worstP99 = Math.max(0, ...samples.map((s) => s.p99Ms ?? 0));
const duplicatesSuppressed = [...duplicatesByRelay.values()].reduce((a, b) => a + b, 0);

if (!check.ok) failures.push(`exactly once failed: ${JSON.stringify(check)}`);
if (non2xx > 0)
  failures.push(`${non2xx} requests without a 2xx: ${JSON.stringify(Object.fromEntries(statuses))}`);
if (apiGrowth === undefined) failures.push('API RSS could not be read');
else if (apiGrowth > RSS_GROWTH_BOUND)
  failures.push(
    `API RSS high-water mark grew by ${(apiGrowth * 100).toFixed(0)}% from the first half to the second (bound ${RSS_GROWTH_BOUND * 100}%)`,
  );
if (check.rows !== ok2xx || orders !== ok2xx)
  failures.push(
    `${ok2xx} orders answered 2xx, but ${orders} orders and ${check.rows} outbox rows are stored`,
  );

const passed = failures.length === 0;
const pct = (g: number | undefined) =>
  g === undefined ? '-' : `${g >= 0 ? '+' : ''}${(g * 100).toFixed(1)}%`;
const summary: [string, string][] = [
  [
    'load',
    `${settings.durationS} s at ${fmt(settings.rate)} orders/s offered (open loop), relay SIGKILLed every ${settings.killEveryS || '-'} s`,
  ],
  ['orders (2xx)', `${fmt(ok2xx)} of ${fmt(sent)} sent`],
  [
    'errors (non-2xx or no answer)',
    `${fmt(non2xx)}${non2xx ? ` ${JSON.stringify(Object.fromEntries(statuses))}` : ''} (expected 0: the API does not depend on the relay)`,
  ],
  [
    'API latency, whole run',
    `p50 ${fmt(percentile(allLatencies, 50), 1)} ms, p99 ${fmt(percentile(allLatencies, 99), 1)} ms, max ${fmt(allLatencies.at(-1), 1)} ms; worst 5 s p99 ${fmt(worstP99, 1)} ms`,
  ],
  [
    'relay kills',
    `${kills.length} (SIGKILL, new relay started at once; ${relayPids.length} relay processes)`,
  ],
  [
    'outbox_pending',
    `max ${fmt(maxPending)} in a 5 s sample; drained ${fmt(drainS, 1)} s after the load ended`,
  ],
  [
    'exactly once',
    `${check.ok ? 'ok' : 'FAILED'}: ${fmt(check.rows)} outbox rows, ${fmt(check.messages)} messages, ${check.missing} missing, ${check.duplicated} duplicated, ${check.unexpected} unexpected`,
  ],
  [
    're-publishes deduplicated by JetStream',
    `${fmt(duplicatesSuppressed)} (at least: counted from /metrics scrapes)`,
  ],
  [
    'API RSS',
    `${fmt(mib(apiStart), 1)} MiB at ${WARMUP_S} s (after warm-up) -> ${fmt(mib(apiEnd), 1)} MiB at the end of the load; ` +
      `highest ${fmt(mib(firstHalfMax), 1)} MiB in the first half, ${fmt(mib(secondHalfMax), 1)} MiB in the second (${pct(apiGrowth)}; bound +${RSS_GROWTH_BOUND * 100}%)`,
  ],
  [
    "API V8 heap (from the API's /metrics)",
    `total ${fmt(mib(apiStartSample?.apiHeapTotalBytes ?? undefined), 1)} -> ${fmt(mib(apiEndSample?.apiHeapTotalBytes ?? undefined), 1)} MiB, used ${fmt(mib(apiStartSample?.apiHeapUsedBytes ?? undefined), 1)} -> ${fmt(mib(apiEndSample?.apiHeapUsedBytes ?? undefined), 1)} MiB; RSS after warm-up between ${fmt(mib(Math.min(...apiRssAfterWarmup)), 1)} and ${fmt(mib(Math.max(...apiRssAfterWarmup)), 1)} MiB`,
  ],
  [
    `RSS of the last relay (pid ${lastRelay})`,
    `${fmt(mib(relayStart), 1)} MiB at ${fmt(relayStartSample?.t)} s -> ${fmt(mib(relayEnd), 1)} MiB at ${fmt(last.t)} s (${pct(relayStart && relayEnd ? relayEnd / relayStart - 1 : undefined)})`,
  ],
  ['result', passed ? 'PASS' : `FAIL: ${failures.join('; ')}`],
];

const machineLine = `${machine.date}; ${machine.cpus}, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}`;
const table = ['| | |', '| --- | --- |', ...summary.map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`)];
process.stdout.write(`\nSoak ${machineLine}\n\n${table.join('\n')}\n`);

await mkdir(settings.out, { recursive: true });
const base = path.join(settings.out, `soak-${machine.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}`);
await writeFile(
  `${base}.json`,
  `${JSON.stringify({ machine, settings: { ...settings, out: undefined }, passed, failures, summary, kills, drainS, check, statuses: Object.fromEntries(statuses), samples }, null, 2)}\n`,
);
const times = samples.map((s) => s.t);
await writeFile(
  `${base}.html`,
  soakHtml({
    title: `Soak: ${settings.durationS} s at ${settings.rate} orders/s, relay SIGKILLed every ${settings.killEveryS || '-'} s`,
    machine: machineLine,
    times,
    kills: kills.map((k) => k.t),
    loadEnd,
    verdict: passed ? 'PASS' : `FAIL: ${failures.join('; ')}`,
    summary,
    charts: [
      {
        title: 'API latency p99 of the requests completed in each 5 s',
        unit: 'ms',
        series: [{ name: 'p99', color: '#1f6feb', values: samples.map((s) => s.p99Ms) }],
      },
      {
        title: 'outbox_pending',
        unit: 'rows',
        series: [{ name: 'pending', color: '#b35900', values: samples.map((s) => s.pending) }],
      },
      {
        title: 'RSS',
        unit: 'MiB',
        series: [
          {
            name: 'API',
            color: '#1f6feb',
            values: samples.map((s) => mib(s.apiRssBytes ?? undefined) ?? null),
          },
          {
            name: 'API V8 heap total',
            color: '#9ec5fe',
            values: samples.map((s) => mib(s.apiHeapTotalBytes ?? undefined) ?? null),
          },
          {
            name: 'relay (current process)',
            color: '#2da44e',
            values: samples.map((s) => mib(s.relayRssBytes ?? undefined) ?? null),
          },
        ],
      },
    ],
  }),
);
progress(`written ${path.relative(process.cwd(), base)}.json and .html`);
process.exitCode = passed ? 0 : 1;
