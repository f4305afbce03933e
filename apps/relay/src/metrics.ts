import type { Db } from '@orders/db';
import { outboxBacklog } from '@orders/db';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The relay's Prometheus metrics. The backlog gauges are read from the database at scrape time. */
export function createRelayMetrics(db: Db) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // One query per scrape feeds all three backlog gauges. When it fails (the database is down) they
  // have no sample at all, as Prometheus expects of what could not be measured: a scrape must not
  // pass the last numbers read off as current ones. outbox_backlog_up says which it was.
  type Backlog = Awaited<ReturnType<typeof outboxBacklog>>;
  let backlog: Promise<Backlog | undefined> | undefined;
  const readBacklog = () => {
    backlog ??= outboxBacklog(db)
      .catch(() => undefined)
      .finally(() => setTimeout(() => (backlog = undefined), 0));
    return backlog;
  };
  const backlogGauge = (name: string, help: string, value: (b: Backlog) => number) =>
    new Gauge({
      name,
      help: `${help} Absent while the database cannot be read (see outbox_backlog_up).`,
      registers: [registry],
      async collect() {
        const b = await readBacklog();
        if (b) this.set(value(b));
        else this.remove(); // no labels: the one series goes until the next good read
      },
    });

  return {
    registry,
    backlogUp: new Gauge({
      name: 'outbox_backlog_up',
      help: '1 when this scrape read the backlog from the database, 0 when the query failed.',
      registers: [registry],
      async collect() {
        this.set((await readBacklog()) ? 1 : 0);
      },
    }),
    pending: backlogGauge(
      'outbox_pending',
      'Outbox rows not yet published (dead rows excluded).',
      (b) => b.pending,
    ),
    oldestPendingAge: backlogGauge(
      'outbox_oldest_pending_age_seconds',
      'Age of the oldest unpublished outbox row; 0 when there is none.',
      (b) => b.oldestAgeSeconds,
    ),
    deadRows: backlogGauge(
      'outbox_dead_rows',
      'Outbox rows set aside after RELAY_MAX_ATTEMPTS failures.',
      (b) => b.dead,
    ),
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
