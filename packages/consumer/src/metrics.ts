import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Where the consumer stands in its stream, from the server's consumer info. */
export interface ConsumerPosition {
  /** Messages in the stream (matching the filter) not delivered yet: the lag. */
  readonly pending: number;
  /** Delivered and not acknowledged yet (0 or 1 with max_ack_pending 1). */
  readonly ackPending: number;
  readonly redelivered: number;
}

/**
 * The consumer's Prometheus metrics, on the service's registry. The lag gauges ask the server at
 * scrape time; when it cannot be asked they have no sample (`consumer_position_up` 0).
 */
export function createConsumerMetrics(
  registry: Registry,
  position: () => Promise<ConsumerPosition | undefined>,
) {
  let reading: Promise<ConsumerPosition | undefined> | undefined;
  const read = () => {
    reading ??= position()
      .catch(() => undefined)
      .finally(() => setTimeout(() => (reading = undefined), 0));
    return reading;
  };
  const positionGauge = (name: string, help: string, value: (p: ConsumerPosition) => number) =>
    new Gauge({
      name,
      help: `${help} Absent while the server cannot be asked (see consumer_position_up).`,
      registers: [registry],
      async collect() {
        const p = await read();
        if (p) this.set(value(p));
        else this.remove();
      },
    });
  return {
    handled: new Counter({
      name: 'consumer_handled_total',
      help: 'Events whose handler ran and committed (each once, with its inbox row).',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'consumer_duplicates_total',
      help: 'Deliveries acknowledged without running the handler: their event id was in the inbox.',
      registers: [registry],
    }),
    failures: new Counter({
      name: 'consumer_failures_total',
      help: 'Handler runs that failed: kind="handler" (retried with backoff, then dead), kind="transient" (database unavailable, retried in place).',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    dead: new Counter({
      name: 'consumer_dead_total',
      help: 'Events set aside in consumer_dead after their last allowed delivery (or as poison).',
      registers: [registry],
    }),
    pruned: new Counter({
      name: 'consumer_inbox_pruned_total',
      help: 'Inbox rows deleted by retention.',
      registers: [registry],
    }),
    handleDuration: new Histogram({
      name: 'consumer_handle_duration_seconds',
      help: 'From delivery to acknowledgement, for handled events.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    positionUp: new Gauge({
      name: 'consumer_position_up',
      help: '1 when this scrape read the consumer info from the server, 0 when it could not.',
      registers: [registry],
      async collect() {
        this.set((await read()) ? 1 : 0);
      },
    }),
    lag: positionGauge(
      'consumer_lag_messages',
      'Messages of the stream not delivered to the consumer yet.',
      (p) => p.pending,
    ),
    ackPending: positionGauge(
      'consumer_ack_pending_messages',
      'Messages delivered and not acknowledged yet.',
      (p) => p.ackPending,
    ),
  };
}
export type ConsumerMetrics = ReturnType<typeof createConsumerMetrics>;
