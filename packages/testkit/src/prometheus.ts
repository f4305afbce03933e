import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOnReservedPort } from './ports.js';
import { killWithTestProcess } from './process.js';

// A real Prometheus server of the test's own (Debian's `prometheus` package, which
// scripts/test-tools.sh installs; PROMETHEUS_BIN overrides), on a reserved loopback port, with its
// configuration and rules written to a temp directory and its storage there too.

export interface PrometheusOptions {
  /** Scrape jobs: job name to `host:port` targets. */
  readonly jobs: Readonly<Record<string, readonly string[]>>;
  /** Rule file contents (YAML), loaded as the server's only rule file. */
  readonly rules?: string;
  /** Scrape and rule evaluation interval, in seconds (1 by default). */
  readonly intervalSeconds?: number;
}

/** An alert as /api/v1/alerts reports it. */
export interface PrometheusAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly state: 'pending' | 'firing';
  readonly activeAt: string;
  readonly value: string;
}

/** One series of an instant query's vector result. */
export interface PrometheusSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

export interface PrometheusServer {
  readonly url: string;
  /** An instant query; throws with Prometheus' error when the expression does not parse or fails. */
  query(expr: string): Promise<PrometheusSample[]>;
  /** The active (pending and firing) alerts. */
  alerts(): Promise<PrometheusAlert[]>;
  /** Each scrape target's health: `job instance` to "up", "down" or "unknown". */
  targets(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

const bin = () => process.env['PROMETHEUS_BIN'] || 'prometheus';

/** Starts the server and resolves once /-/ready answers 200 (rules loaded, first scrapes scheduled). */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  if (spawnSync(bin(), ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      `${bin()} is not installed: Debian's prometheus package provides it (scripts/test-tools.sh installs it), or set PROMETHEUS_BIN`,
    );
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'prometheus-test-'));
  const interval = `${options.intervalSeconds ?? 1}s`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: options.rules === undefined ? [] : ['rules.yml'],
    scrape_configs: Object.entries(options.jobs).map(([job, targets]) => ({
      job_name: job,
      static_configs: [{ targets }],
    })),
  };
  // JSON is YAML: no serializer needed for the configuration.
  await writeFile(path.join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  if (options.rules !== undefined) await writeFile(path.join(dir, 'rules.yml'), options.rules);
  try {
    return await startOnReservedPort(async (reservation) => {
      const url = `http://127.0.0.1:${reservation.port}`;
      const child = spawn(
        bin(),
        [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${reservation.port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      killWithTestProcess(child);
      await ready(child, url);
      return server(child, url, async () => {
        reservation.release();
        await rm(dir, { recursive: true, force: true });
      });
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function ready(child: ChildProcess, url: string): Promise<void> {
  let output = '';
  const onData = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`prometheus exited before it was ready: ${output}`);
    const res = await fetch(`${url}/-/ready`).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.ok) return;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`prometheus not ready within 20 s: ${output}`);
}

function server(child: ChildProcess, url: string, cleanup: () => Promise<void>): PrometheusServer {
  async function api<T>(pathAndQuery: string): Promise<T> {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success')
      throw new Error(`prometheus ${pathAndQuery}: ${body.errorType}: ${body.error}`);
    return body.data;
  }
  return {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: PrometheusSample[] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not a vector`);
      return data.result;
    },
    async alerts() {
      return (await api<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts;
    },
    async targets() {
      const data = await api<{
        activeTargets: { labels: Record<string, string>; health: string }[];
      }>('/api/v1/targets?state=active');
      return Object.fromEntries(
        data.activeTargets.map((t) => [`${t.labels['job']} ${t.labels['instance']}`, t.health]),
      );
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await cleanup();
    },
  };
}
