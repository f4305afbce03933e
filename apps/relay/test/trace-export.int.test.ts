import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDb } from '@orders/db';
import { createTestDatabase, type ReceivedSpan, startNatsServer, startOtlpReceiver } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { natsClient, readStream, startApi, startRelay, streamCount, waitFor } from './helpers.js';

// Trace export switched on by the standard OpenTelemetry variables alone, with real processes and a
// real OTLP/HTTP receiver: one trace from the client's traceparent to the NATS message.

const tdb = await createTestDatabase();
const db = createDb({ url: tdb.url, poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 10_000 });
const nats = await startNatsServer();
const nc = await natsClient(nats);
const otlp = await startOtlpReceiver();

// A module hook in each process under test writes to stderr every OpenTelemetry SDK module it loads:
// the "off" process must load none (the positive control is the "on" one, which must load them).
const hookDir = mkdtempSync(path.join(tmpdir(), 'orders-otel-hook-'));
const hook = path.join(hookDir, 'report-sdk-loads.mjs');
writeFileSync(
  hook,
  `import { registerHooks } from 'node:module';
registerHooks({
  load(url, context, next) {
    if (/[/]@opentelemetry[/](sdk-|instrumentation)/.test(url)) process.stderr.write('otel-sdk-loaded ' + url + '\\n');
    return next(url, context);
  },
});
`,
);
const watchLoads = { NODE_OPTIONS: `--import=${hook}` };

const tracingEnv = {
  ...watchLoads,
  OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
  // No OTEL_EXPORTER_OTLP_PROTOCOL: the default, http/protobuf (test/images.int.test.ts sends http/json).
  // Export within 100 ms instead of the default 5 s batches.
  OTEL_BSP_SCHEDULE_DELAY: '100',
};
const api = await startApi(tdb.url, tracingEnv);
const relay = await startRelay(tdb.url, nats, tracingEnv);
const untraced = await startApi(tdb.url, watchLoads);

afterAll(async () => {
  relay.kill('SIGTERM');
  await Promise.all([relay.exited, api.stop(), untraced.stop()]);
  await nc.close();
  await nats.dispose();
  await otlp.close();
  await db.destroy();
  await tdb.drop();
});

const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;

const inTrace = (spans: readonly ReceivedSpan[]) => spans.filter((s) => s.traceId === CALLER_TRACE);

describe('trace export (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  it('an order posted with a traceparent gives one trace: the API server and database spans, the row, the relay publish, the NATS header', async () => {
    const res = await fetch(`${api.base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
      body: JSON.stringify({ customer_id: crypto.randomUUID(), items: [{ sku: 'A-1', qty: 1, price: 2.5 }] }),
    });
    expect(res.status).toBe(201);
    const orderId = ((await res.json()) as { id: string }).id;

    const spans = inTrace(
      await otlp.waitFor('API server, database and relay publish spans', (all) => {
        const t = inTrace(all);
        return (
          t.some((s) => s.kind === PRODUCER) &&
          t.some((s) => s.kind === CLIENT) &&
          t.some((s) => s.kind === SERVER)
        );
      }),
    );
    const server = spans.find((s) => s.kind === SERVER);
    expect(server).toMatchObject({
      serviceName: 'orders-service-api',
      parentSpanId: CALLER_SPAN,
      name: 'POST /orders',
      attributes: expect.objectContaining({ 'http.route': '/orders' }),
    });
    // The statement that writes the order and its outbox row, under the request.
    const query = spans.find((s) => s.kind === CLIENT && s.scope.includes('pg'));
    expect(query?.serviceName).toBe('orders-service-api');
    expect(query?.attributes['db.system.name'] ?? query?.attributes['db.system']).toBe('postgresql');
    const ancestors = (s: ReceivedSpan | undefined): string[] =>
      s ? [s.parentSpanId, ...ancestors(spans.find((p) => p.spanId === s.parentSpanId))] : [];
    expect(ancestors(query)).toContain(server?.spanId);

    // The outbox row stored the server span's context, not the caller's.
    const row = await sql<{ headers: Record<string, string> }>`
      select headers from outbox where aggregate_id = ${orderId}`.execute(db);
    expect(row.rows[0]?.headers['traceparent']).toBe(`00-${CALLER_TRACE}-${server?.spanId}-01`);

    // The relay's publish: a child of that span, linked to it too, in the relay's own service.
    const publish = spans.find((s) => s.kind === PRODUCER);
    expect(publish).toMatchObject({
      serviceName: 'orders-service-relay',
      name: 'publish orders.order_created',
      parentSpanId: server?.spanId,
      links: [{ traceId: CALLER_TRACE, spanId: server?.spanId }],
    });
    // And the message names the publish span, for the consumer's spans to hang under.
    await waitFor('the message', async () => (await streamCount(nc, 'orders')) >= 1);
    const [message] = await readStream(nc, 'orders');
    expect(message?.headers['traceparent']).toBe(`00-${CALLER_TRACE}-${publish?.spanId}-01`);

    // Probes, scrapes and the relay's own polling queries start no traces.
    await fetch(`${api.base}/metrics`).then((r) => r.text());
    await fetch(`http://127.0.0.1:${relay.port}/metrics`).then((r) => r.text());
    await sleep(500);
    expect(otlp.spans.filter((s) => s.serviceName === 'orders-service-relay' && s.kind !== PRODUCER)).toEqual(
      [],
    );
    expect(otlp.spans.filter((s) => String(s.attributes['url.path'] ?? '').match(/health|metrics/))).toEqual(
      [],
    );
    expect(api.proc.stderr.some((l) => l.startsWith('otel-sdk-loaded'))).toBe(true);
  });

  it('unset, the process loads no SDK module and the caller context passes through unchanged', async () => {
    const traceparent = '00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01';
    const res = await fetch(`${untraced.base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent },
      body: JSON.stringify({ customer_id: crypto.randomUUID(), items: [{ sku: 'A-1', qty: 1, price: 2.5 }] }),
    });
    expect(res.status).toBe(201);
    const orderId = ((await res.json()) as { id: string }).id;
    const row = await sql<{ headers: Record<string, string> }>`
      select headers from outbox where aggregate_id = ${orderId}`.execute(db);
    expect(row.rows[0]?.headers['traceparent']).toBe(traceparent);
    expect(untraced.proc.stderr.filter((l) => l.startsWith('otel-sdk-loaded'))).toEqual([]);
    expect(otlp.spans.filter((s) => s.traceId === '1af7651916cd43dd8448eb211c80319c')).toEqual([]);
  });
});
