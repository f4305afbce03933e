import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  ErrorCode,
  type JetStreamManager,
  NatsError,
  nanos,
} from 'nats';

/** The durable pull consumer one service's processes share. */
export interface DurableSettings {
  readonly stream: string;
  readonly name: string;
  readonly filterSubject: string;
  readonly ackWaitMs: number;
}

/**
 * The durable's configuration. `max_ack_pending: 1` is what keeps each order's events in stream order
 * with any number of processes: the server hands out the next message only once the previous one is
 * acknowledged (or terminated), a redelivery included, so no later event of an order can overtake an
 * earlier one that failed, timed out or was in a process that died. The subjects carry no order id
 * (`orders.order_created` is the contract), so partitioning by subject is not open to us.
 * `max_deliver: -1`: the server never drops a message on its own; the consumer counts deliveries and
 * writes a dead letter itself (a server-side limit would skip a message silently after N crashes).
 */
export function durableConfig(s: DurableSettings): Partial<ConsumerConfig> {
  return {
    durable_name: s.name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: s.filterSubject,
    max_ack_pending: 1,
    max_deliver: -1,
    ack_wait: nanos(s.ackWaitMs),
  };
}

/** Creates the durable, or brings an existing one's editable settings in line (ack wait, limits). */
export async function ensureDurable(jsm: JetStreamManager, s: DurableSettings): Promise<void> {
  const wanted = durableConfig(s);
  let existing: ConsumerConfig | undefined;
  try {
    existing = (await jsm.consumers.info(s.stream, s.name)).config;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (existing === undefined) {
    await jsm.consumers.add(s.stream, wanted);
    return;
  }
  if (existing.filter_subject !== s.filterSubject) {
    throw new Error(
      `durable consumer ${s.name} reads ${existing.filter_subject ?? '(all)'}, not ${s.filterSubject}: ` +
        'delete it (nats consumer rm) or choose another CONSUMER_NAME',
    );
  }
  if (
    existing.max_ack_pending !== wanted.max_ack_pending ||
    existing.ack_wait !== wanted.ack_wait ||
    existing.max_deliver !== wanted.max_deliver
  ) {
    await jsm.consumers.update(s.stream, s.name, {
      max_ack_pending: 1,
      max_deliver: -1,
      ...(wanted.ack_wait !== undefined ? { ack_wait: wanted.ack_wait } : {}),
    });
  }
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof NatsError &&
    (err.code === ErrorCode.JetStream404NoMessages ||
      err.api_error?.err_code === 10014 || // consumer not found
      /consumer not found/i.test(err.message))
  );
}
