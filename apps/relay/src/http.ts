import { type Db, pingDatabase } from '@orders/db';
import { Hono } from 'hono';
import type { RelayMetrics } from './metrics.js';
import type { NatsLink } from './nats/link.js';

/**
 * The relay's ops surface: `/health` (the process is alive), `/ready` (PostgreSQL answers and NATS
 * is connected with the stream ensured and its PubAck subscription accepted), `/metrics` (Prometheus).
 */
export function createOpsApp(deps: { db: Db; nats: NatsLink; metrics: RelayMetrics }) {
  const app = new Hono();
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/ready', async (c) => {
    const database = await pingDatabase(deps.db).then(
      () => 'ok' as const,
      () => 'unreachable' as const,
    );
    const inboxError = deps.nats.inboxError;
    const nats = !deps.nats.ready
      ? ('unreachable' as const)
      : inboxError !== undefined
        ? ('pubacks_refused' as const)
        : ('ok' as const);
    const ready = database === 'ok' && nats === 'ok';
    return c.json(
      {
        status: ready ? 'ready' : 'not_ready',
        database,
        nats,
        ...(inboxError !== undefined ? { nats_error: inboxError } : {}),
      },
      ready ? 200 : 503,
    );
  });
  app.get('/metrics', async (c) => {
    deps.metrics.natsConnected.set(deps.nats.ready ? 1 : 0);
    return c.text(await deps.metrics.registry.metrics(), 200, {
      'Content-Type': deps.metrics.registry.contentType,
    });
  });
  app.notFound((c) => c.json({ status: 404, detail: `no route for ${c.req.method} ${c.req.path}` }, 404));
  return app;
}
