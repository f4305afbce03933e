import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** The API's Prometheus metrics, on a registry of their own (so tests can build many apps in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, route template and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    ordersCreated: new Counter({
      name: 'orders_created_total',
      help: 'Orders committed (with their outbox event).',
      registers: [registry],
    }),
    idempotentReplays: new Counter({
      name: 'orders_idempotent_replays_total',
      help: 'POST /orders retries answered from a stored Idempotency-Key response (nothing created).',
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
