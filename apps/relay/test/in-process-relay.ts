import type { Db } from '@orders/db';
import type { Logger } from '@orders/logger';
import { createRelayMetrics } from '../src/metrics.js';
import { NatsLink } from '../src/nats/link.js';
import { createRelay, type RelayDeps, type RelaySettings } from '../src/relay.js';

export interface InProcessRelayOptions {
  readonly db: Db;
  readonly natsUrl: string;
  readonly stream: string;
  /** The relay's id and its NATS connection name. */
  readonly name: string;
  readonly logger: Logger;
  /** The window a stream the link creates gets (default 120 s). */
  readonly duplicateWindowMs?: number;
  /** The link's PubAck timeout (default 1 s). */
  readonly publishTimeoutMs?: number;
  /** The cap of both the link's reconnect backoff and the relay's (default 500 ms). */
  readonly backoffMaxMs?: number;
  /** The relay's loop settings besides its id and backoff cap (defaults: see below). */
  readonly settings?: Partial<Omit<RelaySettings, 'relayId' | 'backoffMaxMs'>>;
  readonly afterPublish?: RelayDeps['afterPublish'];
}

/**
 * A relay loop and its NATS link in the test's own process, with short timings so that a test sees a
 * retry, a lease running out or a reconnect within seconds. Not started: call `start()`, and `stop()`
 * (relay first, then link) in a `finally`.
 */
export function inProcessRelay(options: InProcessRelayOptions) {
  const { db, logger, name } = options;
  const backoffMaxMs = options.backoffMaxMs ?? 500;
  const link = new NatsLink({
    url: options.natsUrl,
    stream: options.stream,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
    publishTimeoutMs: options.publishTimeoutMs ?? 1000,
    backoffMaxMs,
    name,
    logger,
  });
  const metrics = createRelayMetrics(db);
  const relay = createRelay({
    db,
    nats: link,
    metrics,
    logger,
    settings: {
      relayId: name,
      batchSize: 100,
      pollIntervalMs: 100,
      leaseMs: 1000,
      maxAttempts: 5,
      retryDelayMs: 100,
      ...options.settings,
      backoffMaxMs,
    },
    ...(options.afterPublish ? { afterPublish: options.afterPublish } : {}),
  });
  return {
    link,
    relay,
    metrics,
    start(): void {
      link.start();
      relay.start();
    },
    async stop(): Promise<void> {
      await relay.stop();
      await link.stop();
    },
  };
}
