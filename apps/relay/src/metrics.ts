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

  const partitionGauge = (name: string, help: string, value: (p: Backlog['partitions'][number]) => number) =>
    new Gauge({
      name,
      help: `${help} Absent while the database cannot be read (see outbox_backlog_up).`,
      labelNames: ['partition'] as const,
      registers: [registry],
      async collect() {
        const b = await readBacklog();
        this.reset();
        if (b) for (const p of b.partitions) this.set({ partition: String(p.partition) }, value(p));
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
      "Rows committed past their partition's cursor, not yet published (dead letters excluded).",
      (b) => b.pending,
    ),
    oldestPendingAge: backlogGauge(
      'outbox_oldest_pending_age_seconds',
      "Age of the oldest row at the head of a partition's log; 0 when nothing is pending.",
      (b) => b.oldestAgeSeconds,
    ),
    partitionPending: partitionGauge(
      'outbox_partition_pending',
      "Rows committed past each partition's cursor.",
      (p) => p.pending,
    ),
    partitionOldestAge: partitionGauge(
      'outbox_partition_oldest_pending_age_seconds',
      "Age of the row at the head of each partition's log; 0 when nothing is pending.",
      (p) => p.oldestPendingAgeSeconds,
    ),
    partitionsHeld: new Gauge({
      name: 'outbox_relay_partitions_held',
      help: 'Partitions of the outbox log this relay holds now.',
      registers: [registry],
    }),
    deadRows: backlogGauge(
      'outbox_dead_rows',
      'Dead letters: rows moved to outbox_dead after RELAY_MAX_ATTEMPTS failures.',
      (b) => b.dead,
    ),
    published: new Counter({
      name: 'outbox_published_total',
      help: 'Events acknowledged by JetStream (duplicates included).',
      registers: [registry],
    }),
    pruned: new Counter({
      name: 'outbox_pruned_total',
      help: 'Read outbox rows deleted by the retention (OUTBOX_RETENTION).',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'outbox_duplicates_total',
      help: 'PubAcks with duplicate: true: the event was already in the stream (a re-publish after a crash or a failed batch).',
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
        'Rows that may have been published longer ago than the stream duplicate window, looked up in the ' +
        'stream before publishing: "found" were already there (not re-sent), "absent" were sent.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    dead: new Counter({
      name: 'outbox_dead_total',
      help: 'Rows moved to the dead letters by this process.',
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'outbox_batch_size',
      help: 'Rows per batch read from the log.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: 'outbox_batch_duration_seconds',
      help: 'Read and publish of one batch, until every PubAck is in.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    commitToAck: new Histogram({
      name: 'outbox_commit_to_ack_seconds',
      help: "From the row's created_at to the PubAck that completed its batch.",
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
