import type { Db } from '@orders/db';
import { outboxBacklog } from '@orders/db';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The relay's Prometheus metrics. The backlog gauges are read from the database at scrape time. */
export function createRelayMetrics(db: Db) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // One query per scrape feeds all three backlog gauges.
  let backlog: Promise<Awaited<ReturnType<typeof outboxBacklog>> | undefined> | undefined;
  const readBacklog = () => {
    backlog ??= outboxBacklog(db)
      .catch(() => undefined)
      .finally(() => setTimeout(() => (backlog = undefined), 0));
    return backlog;
  };

  return {
    registry,
    pending: new Gauge({
      name: 'outbox_pending',
      help: 'Outbox rows not yet published (dead rows excluded).',
      registers: [registry],
      async collect() {
        const b = await readBacklog();
        if (b) this.set(b.pending);
      },
    }),
    oldestPendingAge: new Gauge({
      name: 'outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unpublished outbox row; 0 when there is none.',
      registers: [registry],
      async collect() {
        const b = await readBacklog();
        if (b) this.set(b.oldestAgeSeconds);
      },
    }),
    deadRows: new Gauge({
      name: 'outbox_dead_rows',
      help: 'Outbox rows set aside after RELAY_MAX_ATTEMPTS failures.',
      registers: [registry],
      async collect() {
        const b = await readBacklog();
        if (b) this.set(b.dead);
      },
    }),
    published: new Counter({
      name: 'outbox_published_total',
      help: 'Events acknowledged by JetStream and marked published (duplicates included).',
      registers: [registry],
    }),
    pruned: new Counter({
      name: 'outbox_pruned_total',
      help: 'Published outbox rows deleted by the retention (OUTBOX_RETENTION).',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'outbox_duplicates_total',
      help: 'PubAcks with duplicate: true: the event was already in the stream (a re-publish after a crash or lost mark).',
      registers: [registry],
    }),
    failed: new Counter({
      name: 'outbox_publish_failures_total',
      help: 'Publishes that failed, by kind: "row" counts against the row, "transient" (NATS unreachable, timeout) does not.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    resolved: new Counter({
      name: 'outbox_resolved_total',
      help:
        'Rows taken again after their first claim was longer ago than the stream duplicate window, looked up ' +
        'in the stream before publishing: "found" were already there (marked, not re-sent), "absent" were sent.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    dead: new Counter({
      name: 'outbox_dead_total',
      help: 'Rows marked dead by this process.',
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'outbox_batch_size',
      help: 'Rows per claimed batch.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: 'outbox_batch_duration_seconds',
      help: 'Claim, publish and mark of one batch.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    commitToAck: new Histogram({
      name: 'outbox_commit_to_ack_seconds',
      help: "From the row's created_at to its PubAck.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    natsConnected: new Gauge({
      name: 'outbox_relay_nats_connected',
      help: '1 while the relay has a NATS connection and the stream is ensured.',
      registers: [registry],
    }),
  };
}
export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
