import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createTestDatabase,
  type PrometheusAlert,
  REPO_ROOT,
  startNatsServer,
  startPrometheus,
  startServerProcess,
} from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

// The shipped alert rules and dashboard against a real Prometheus scraping a real API and relay,
// with a nats-server of the test's own: stop NATS while orders come in, and the backlog alert goes
// pending, then firing; start it again, and the alert resolves. Then every dashboard query parses
// and returns series from what that server scraped.
//
// The rules are the shipped file with two changes, made here and checked to apply: every `for:` is
// 3 s, and the backlog age threshold is 3 s instead of 60 (a test cannot hold NATS down for minutes).
// Scrapes and evaluations run every second.

const FOR = '3s';
const AGE_THRESHOLD = 3;

function rulesForTest(): string {
  const text = readFileSync(path.join(REPO_ROOT, 'deploy/prometheus/rules.yml'), 'utf8');
  const doc = parseYaml(text) as { groups: { rules: { alert: string; expr: string; for?: string }[] }[] };
  for (const rule of doc.groups.flatMap((g) => g.rules)) {
    rule.for = FOR;
    if (rule.alert === 'OutboxBacklogOld') {
      const expr = rule.expr.replace(/ > 60$/, ` > ${AGE_THRESHOLD}`);
      if (expr === rule.expr)
        throw new Error(`OutboxBacklogOld's expression changed: ${rule.expr}; update this test`);
      rule.expr = expr;
    }
  }
  return stringifyYaml(doc);
}

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const common = { DATABASE_URL: tdb.url, HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
const api = await startServerProcess('apps/api/dist/main.js', (port) => ({
  ...common,
  SERVICE_PORT: String(port),
}));
const relay = await startServerProcess('apps/relay/dist/main.js', (port) => ({
  ...common,
  RELAY_PORT: String(port),
  NATS_URL: nats.url,
  // Reconnect within a second once NATS is back.
  RELAY_BACKOFF_MAX_MS: '1000',
}));
const prometheus = await startPrometheus({
  jobs: { 'orders-api': [`127.0.0.1:${api.port}`], 'orders-relay': [`127.0.0.1:${relay.port}`] },
  rules: rulesForTest(),
  intervalSeconds: 1,
});

// A steady trickle of orders for the whole file: 10 a second, like a quiet shop.
const statuses = new Map<number, number>();
let loading = true;
const load = (async () => {
  while (loading) {
    const res = await fetch(`http://127.0.0.1:${api.port}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer_id: crypto.randomUUID(), items: [{ sku: 'A-1', qty: 1, price: 3 }] }),
    }).catch(() => undefined);
    await res?.body?.cancel();
    statuses.set(res?.status ?? 0, (statuses.get(res?.status ?? 0) ?? 0) + 1);
    await sleep(100);
  }
})();

afterAll(async () => {
  loading = false;
  await load;
  await prometheus.stop();
  relay.proc.kill('SIGTERM');
  api.proc.kill('SIGTERM');
  await Promise.all([relay.proc.exited, api.proc.exited]);
  await nats.dispose();
  await tdb.drop();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(200);
  }
}

const value = async (expr: string) => Number((await prometheus.query(expr))[0]?.value[1] ?? Number.NaN);
const named = (alerts: PrometheusAlert[], name: string) =>
  alerts.filter((a) => a.labels['alertname'] === name);

describe('alert rules on a real Prometheus', () => {
  it('backlog alert: pending, then firing while NATS is down; resolved once it is back', async () => {
    // Both targets scraped, events flowing, and nothing of the backlog alerting while all is well.
    await until('both targets up', async () => {
      const t = await prometheus.targets();
      return Object.values(t).length === 2 && Object.values(t).every((h) => h === 'up') ? t : undefined;
    });
    await until('events published, seen by Prometheus', async () =>
      (await value('sum(outbox_published_total)')) > 0 ? true : undefined,
    );
    const healthy = await prometheus.alerts();
    expect(named(healthy, 'OutboxBacklogOld')).toEqual([]);
    expect(named(healthy, 'OutboxRelayNatsDisconnected')).toEqual([]);

    await nats.stop();
    const states: string[] = [];
    const firing = await until('OutboxBacklogOld firing', async () => {
      const alerts = await prometheus.alerts();
      const [backlog] = named(alerts, 'OutboxBacklogOld');
      if (backlog && states.at(-1) !== backlog.state) states.push(backlog.state);
      return backlog?.state === 'firing' ? alerts : undefined;
    });
    // Seen pending first: `for:` held it back, then it fired.
    expect(states).toEqual(['pending', 'firing']);
    expect(named(firing, 'OutboxBacklogOld')[0]).toMatchObject({
      labels: { severity: 'critical' },
      annotations: { runbook: expect.stringContaining('pnpm relay status') },
    });
    // The relay says why: no NATS connection.
    await until('OutboxRelayNatsDisconnected firing', async () =>
      named(await prometheus.alerts(), 'OutboxRelayNatsDisconnected')[0]?.state === 'firing'
        ? true
        : undefined,
    );
    expect(await value('max(outbox_pending)')).toBeGreaterThan(0);

    await nats.start();
    await until('OutboxBacklogOld resolved', async () => {
      const alerts = await prometheus.alerts();
      return named(alerts, 'OutboxBacklogOld').length === 0 &&
        named(alerts, 'OutboxRelayNatsDisconnected').length === 0
        ? true
        : undefined;
    });
    await until('the backlog drained', async () =>
      (await value('max(outbox_pending)')) === 0 ? true : undefined,
    );
    // The API never depended on NATS: every order of the outage was taken.
    expect([...statuses.keys()].filter((s) => s !== 201)).toEqual([]);
  }, 90_000);
});

describe('the Grafana dashboard on the same Prometheus', () => {
  it('every panel query parses and returns series during the load', async () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(REPO_ROOT, 'deploy/grafana/dashboards/orders.json'), 'utf8'),
    ) as { panels: { title: string; targets: { expr: string }[] }[] };
    const queries = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
    expect(queries.length).toBeGreaterThanOrEqual(12);
    // Grafana's $__rate_interval, as it would pick it for a 1 s scrape; any other variable is unknown here.
    const resolve = (expr: string) => expr.replaceAll('$__rate_interval', '20s');
    for (const q of queries) expect(resolve(q.expr), q.panel).not.toContain('$');
    // Rates need two scrapes of events in their window: wait until the relay publishes again.
    await until('events published in the last 20 s', async () =>
      (await value('sum(rate(outbox_published_total[20s]))')) > 0 &&
      (
        await prometheus.query(
          resolve(queries.find((q) => q.panel === 'Commit to stream latency')?.expr ?? ''),
        )
      ).length > 0
        ? true
        : undefined,
    );
    const empty: string[] = [];
    for (const q of queries) {
      const result = await prometheus.query(resolve(q.expr)); // throws on a parse error, naming it
      if (result.length === 0 || result.every((s) => s.value[1] === 'NaN'))
        empty.push(`${q.panel}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
  }, 60_000);
});
