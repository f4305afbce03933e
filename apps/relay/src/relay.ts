import {
  type ClaimedEvent,
  claimOutboxBatch,
  type Db,
  isDatabaseUnavailable,
  markOutboxPublished,
  type RowFailure,
  recordOutboxFailures,
  releaseOutboxClaims,
} from '@orders/db';
import type { Logger } from '@orders/logger';
import { Backoff, sleep } from './backoff.js';
import type { RelayMetrics } from './metrics.js';
import { type NatsLink, RowPublishError } from './nats.js';
import { endPublishSpan, relayTracer, startPublishSpan } from './tracing.js';

export interface RelaySettings {
  readonly relayId: string;
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  readonly leaseMs: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly backoffMaxMs: number;
  /** 'aggregate': events of one aggregate are published one after another, in commit order. */
  readonly ordering: 'aggregate' | 'none';
  /**
   * Take leased rows whose relay is gone (holds no presence lock) without waiting for the lease. Only
   * for a relay whose own session holds its presence lock (OutboxListener does), or it would take its
   * peers' rows, and they its own.
   */
  readonly orphanedLeases?: boolean;
  /** How late a publish may land after it was sent (default 5 s): part of the dedup-window margin. */
  readonly publishTimeoutMs?: number;
}

/** Clock differences between database, relay and NATS hosts that the stream lookup allows for. */
const LOOKUP_MARGIN_MS = 10_000;

export interface RelayDeps {
  readonly db: Db;
  readonly nats: NatsLink;
  readonly metrics: RelayMetrics;
  readonly logger: Logger;
  readonly settings: RelaySettings;
  /**
   * Test hook, called after the PubAcks of a batch and before they are marked. Lets a test crash
   * the relay at the worst moment (acked, not marked) without racing a SIGKILL against it.
   */
  readonly afterPublish?: (published: readonly string[]) => Promise<void> | void;
}

const encoder = new TextEncoder();
const tracer = relayTracer();

/**
 * The relay loop: claim the oldest rows, publish them all concurrently, mark what JetStream
 * acknowledged. It keeps going while batches come back full, then waits for a notification or the
 * poll interval. Outages of NATS or PostgreSQL pause it with capped, jittered backoff; it never exits
 * on its own.
 */
export function createRelay(deps: RelayDeps) {
  const { db, nats, metrics, settings } = deps;
  const log = deps.logger.child({ component: 'relay' });
  const stopping = new AbortController();
  // Published and acked, not yet marked because the database failed: marked first when it is back,
  // so a database blip does not turn into re-publishes.
  const unmarked = new Set<string>();
  let woken = false;
  let wake: (() => void) | undefined;
  let running: Promise<void> | undefined;
  let databaseUp = true;

  function notify(): void {
    woken = true;
    wake?.();
  }

  /** Waits for a notification, the poll interval, or stop, whichever comes first. */
  async function idle(): Promise<void> {
    if (woken || stopping.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, settings.pollIntervalMs);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        stopping.signal.removeEventListener('abort', done);
        resolve();
      }
      wake = done;
      stopping.signal.addEventListener('abort', done, { once: true });
    });
  }

  async function flushUnmarked(): Promise<void> {
    if (unmarked.size === 0) return;
    const ids = [...unmarked];
    await markOutboxPublished(db, ids);
    for (const id of ids) unmarked.delete(id);
  }

  /*
   * Batches are pipelined two deep: while batch N waits for its PubAcks and its mark, the claim of
   * batch N+1 already runs. N+1 is published only after every message of N was handed to the
   * connection, so the stream still receives rows in claim order. Measured on a 100,000-row backlog
   * (batch 500): claim ~11 ms, publish ~9 ms, mark ~8 ms per batch; one at a time left the relay
   * idle 58% of the time at ~16,000 events/s.
   */
  let inFlight: Promise<void> | undefined;

  /** Waits for the batch in flight to be acked and marked; rethrows its failure. */
  async function settle(): Promise<void> {
    const batch = inFlight;
    inFlight = undefined;
    await batch;
  }

  /**
   * Claims a batch and starts publishing it; the previous batch is finished meanwhile. Returns the
   * number of rows claimed; throws when NATS or the database is unavailable.
   */
  async function step(): Promise<number> {
    await flushUnmarked();
    woken = false; // a notification from here on means "rows may have committed after this claim"
    const started = performance.now();
    const claiming = claimOutboxBatch(db, {
      limit: settings.batchSize,
      leaseMs: settings.leaseMs,
      relayId: settings.relayId,
      perAggregateOrder: settings.ordering === 'aggregate',
      orphanedLeases: settings.orphanedLeases === true,
    });
    // Awaited below, after the previous batch; without a handler now, a claim that fails while we
    // wait (database down) would be an unhandled rejection, which ends a Node process.
    claiming.catch(() => {});
    let previousFailure: unknown;
    try {
      await settle();
    } catch (err) {
      previousFailure = err;
    }
    const rows = await claiming;
    if (previousFailure !== undefined) {
      // The previous batch hit an outage: do not publish this one into it.
      await release(
        rows.map((r) => r.id),
        previousFailure,
      );
      throw previousFailure;
    }
    if (rows.length === 0) return 0;
    let alreadyInStream: ReadonlySet<string>;
    try {
      alreadyInStream = await resolveBeyondWindow(rows);
    } catch (err) {
      await release(
        rows.map((r) => r.id),
        err,
      );
      throw new NatsUnavailable('could not look up re-claimed rows in the stream', { cause: err });
    }
    const outcomes = Promise.allSettled(
      rows.map((row) => (alreadyInStream.has(row.id) ? Promise.resolve() : publishOne(row))),
    );
    inFlight = outcomes.then((o) => finish(rows, o, started));
    // Handled by settle(); this only keeps an unobserved rejection from being reported meanwhile.
    inFlight.catch(() => {});
    return rows.length;
  }

  /**
   * Rows taken before, whose first claim is older than the stream's duplicate window (less the publish
   * timeout): an earlier publish may have been stored and then forgotten by the dedup memory, so a
   * re-publish would be stored twice. Look their ids up in the stream, from their first claim onwards;
   * those found are marked without sending. Rows whose first claim is recent enough are left to
   * Nats-Msg-Id, and nothing is looked up on the normal path (claims = 1).
   */
  async function resolveBeyondWindow(rows: readonly ClaimedEvent[]): Promise<ReadonlySet<string>> {
    const windowMs = nats.streamDuplicateWindowMs;
    if (windowMs === undefined) return new Set();
    const margin = settings.publishTimeoutMs ?? 5000;
    const uncertain = rows.filter((r) => r.claims > 1 && r.first_claim_age_ms + margin >= windowMs);
    if (uncertain.length === 0) return new Set();
    const found = new Set<string>();
    const bySubject = Map.groupBy(uncertain, (r) => r.subject);
    for (const [subject, group] of bySubject) {
      const oldest = Math.max(...group.map((r) => r.first_claim_age_ms));
      const since = new Date(Date.now() - oldest - LOOKUP_MARGIN_MS);
      for (const id of await nats.findInStream(subject, since, new Set(group.map((r) => r.id))))
        found.add(id);
    }
    metrics.resolved.inc({ outcome: 'found' }, found.size);
    metrics.resolved.inc({ outcome: 'absent' }, uncertain.length - found.size);
    log.info(
      { rows: uncertain.length, found: found.size, windowMs },
      'looked up rows claimed before, beyond the duplicate window, in the stream',
    );
    return found;
  }

  /** Marks what was acked, records row failures, releases rows that hit an outage. */
  async function finish(
    rows: readonly ClaimedEvent[],
    outcomes: readonly PromiseSettledResult<void>[],
    started: number,
  ): Promise<void> {
    const published: string[] = [];
    const transient: string[] = [];
    const failures: RowFailure[] = [];
    let firstTransient: unknown;
    outcomes.forEach((outcome, i) => {
      const row = rows[i] as ClaimedEvent;
      if (outcome.status === 'fulfilled') published.push(row.id);
      else if (outcome.reason instanceof RowPublishError)
        failures.push({ id: row.id, error: outcome.reason.message });
      else {
        transient.push(row.id);
        firstTransient ??= outcome.reason;
      }
    });

    await deps.afterPublish?.(published);
    // The first database failure below is the batch's error; the transient rows are given back anyway.
    let failed: { err: unknown } | undefined;
    try {
      for (const id of published) unmarked.add(id);
      await flushUnmarked();
      metrics.published.inc(published.length);

      if (failures.length > 0) {
        metrics.failed.inc({ kind: 'row' }, failures.length);
        const results = await recordOutboxFailures(db, failures, settings);
        for (const r of results) {
          const error = failures.find((f) => f.id === r.id)?.error;
          if (r.dead) {
            metrics.dead.inc();
            log.error(
              { outbox_id: r.id, attempts: r.attempts, error },
              'outbox row is dead: it will not be retried',
            );
          } else {
            log.warn(
              { outbox_id: r.id, attempts: r.attempts, error },
              'publish failed for this row; will retry',
            );
          }
        }
      }
    } catch (err) {
      failed = { err };
    }
    if (transient.length > 0) {
      metrics.failed.inc({ kind: 'transient' }, transient.length);
      // Not the rows' fault: give them back at once, attempts untouched.
      const cause = new NatsUnavailable(`${transient.length} of ${rows.length} publishes failed`, {
        cause: firstTransient,
      });
      await release(transient, failed?.err ?? cause);
      failed ??= { err: cause };
    }
    if (failed) throw failed.err;

    metrics.batchSize.observe(rows.length);
    metrics.batchDuration.observe((performance.now() - started) / 1000);
    log.debug({ rows: rows.length, published: published.length, failed: failures.length }, 'batch');
  }

  /**
   * Gives claimed rows back after `cause` stopped their batch. A failure here is logged and never
   * replaces `cause`, the error the caller rethrows: the rows then wait for the orphan check (a relay
   * that is gone) or their lease.
   */
  async function release(ids: readonly string[], cause: unknown): Promise<void> {
    try {
      await releaseOutboxClaims(db, ids, settings.relayId);
    } catch (err) {
      log.warn(
        { err, rows: ids.length, cause: cause instanceof Error ? cause.message : String(cause) },
        'could not release claimed rows; they wait for their lease or the orphan check',
      );
    }
  }

  async function publishOne(row: ClaimedEvent): Promise<void> {
    const span = startPublishSpan(tracer, row);
    try {
      const ack = await nats.publish({
        id: row.id,
        subject: row.subject,
        payload: encoder.encode(row.payload),
        headers: row.headers,
      });
      endPublishSpan(span, { duplicate: ack.duplicate });
      metrics.commitToAck.observe(Math.max(0, (Date.now() - row.created_at_ms) / 1000));
      if (ack.duplicate) metrics.duplicates.inc();
    } catch (err) {
      endPublishSpan(span, { error: err });
      throw err;
    }
  }

  async function loop(): Promise<void> {
    const backoff = new Backoff(100, settings.backoffMaxMs);
    const signal = stopping.signal;
    while (!signal.aborted) {
      if (!nats.ready) {
        await nats.waitReady(signal);
        continue;
      }
      try {
        // The batch in flight is finished by the next step, concurrently with its claim, so a row
        // that commits meanwhile does not wait for the previous batch's mark.
        const claimed = await step();
        if (!databaseUp) {
          databaseUp = true;
          log.info('database reachable again');
        }
        backoff.reset();
        // A full batch means there is probably more: keep claiming without waiting.
        if (claimed < settings.batchSize) await idle();
      } catch (err) {
        const delay = backoff.next();
        if (err instanceof NatsUnavailable) {
          log.warn({ err, retryInMs: delay }, 'nats unavailable; rows released, retrying');
        } else if (isDatabaseUnavailable(err)) {
          if (databaseUp) log.warn({ err, retryInMs: delay }, 'database unavailable; retrying');
          databaseUp = false;
        } else {
          log.error({ err, retryInMs: delay }, 'relay batch failed; retrying');
        }
        await sleep(delay, signal);
      }
    }
  }

  return {
    /** Starts the loop in the background. */
    start(): void {
      running ??= loop();
    },
    /** Wake-up hint: rows may be waiting (LISTEN/NOTIFY). */
    notify,
    /** Stops claiming, lets the batch in flight finish (publish, mark), then resolves. Idempotent. */
    async stop(): Promise<void> {
      stopping.abort();
      await running;
      try {
        await settle();
      } catch {
        // An outage during the last batch: its rows were released for the next relay.
      }
      try {
        await flushUnmarked();
      } catch (err) {
        log.warn(
          { err, unmarked: unmarked.size },
          'could not mark acked rows before stopping; they will be re-published as duplicates',
        );
      }
    },
    /** True while the database answered the last batch. */
    get databaseUp(): boolean {
      return databaseUp;
    },
  };
}
export type Relay = ReturnType<typeof createRelay>;

/** A batch could not be published because NATS was unavailable; its rows were released. */
export class NatsUnavailable extends Error {
  override name = 'NatsUnavailable';
}
