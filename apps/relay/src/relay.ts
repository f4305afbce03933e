import type { Span } from '@opentelemetry/api';
import {
  type CursorWrite,
  claimPartitions,
  clearOutboxFailures,
  type Db,
  type HeldPartition,
  isDatabaseUnavailable,
  type LogEvent,
  type LogPosition,
  type PartitionRead,
  type RowFailure,
  readOutboxLog,
  recordOutboxFailures,
  releasePartitions,
  writeCursors,
} from '@orders/db';
import { Backoff, cappedDelay, sleep } from '@orders/lifecycle';
import type { Logger } from '@orders/logger';
import type { RelayMetrics } from './metrics.js';
import { RowPublishError } from './nats/errors.js';
import type { OutgoingMessage, Publisher, PublishOutcome } from './nats/publisher.js';
import { endPublishSpan, publishHeaders, relayTracer, startPublishSpan } from './tracing.js';

export interface RelaySettings {
  readonly relayId: string;
  /** Rows per batch across the partitions this relay holds. */
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  /** How long a partition stays this relay's without renewal (RELAY_LEASE_MS). */
  readonly leaseMs: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly backoffMaxMs: number;
  /** How late a publish may land after it was sent (default 5 s): part of the dedup-window margin. */
  readonly publishTimeoutMs?: number;
  /** How often the relay takes, renews and gives back partitions (default 250 ms). */
  readonly rebalanceIntervalMs?: number;
}

/** Clock differences between database, relay and NATS hosts that the stream lookup allows for. */
const LOOKUP_MARGIN_MS = 10_000;
/** A partition's share of a batch never drops below this, however many partitions a relay holds. */
const MIN_PARTITION_BATCH = 32;

export interface RelayDeps {
  readonly db: Db;
  readonly nats: Publisher;
  readonly metrics: RelayMetrics;
  readonly logger: Logger;
  readonly settings: RelaySettings;
  /**
   * Trace export is on (an OpenTelemetry SDK is registered): each publish gets its span. Without an
   * SDK the spans would be no-ops that still cost a few objects per event, so none are made.
   */
  readonly traced?: boolean;
  /**
   * Test hook, called after the PubAcks of a batch and before its cursor moves. Lets a test crash
   * the relay at the worst moment (acked, cursor not written) without racing a SIGKILL against it.
   */
  readonly afterPublish?: (published: readonly string[]) => Promise<void> | void;
}

/** What the relay knows of a partition it holds. */
interface Partition {
  readonly partition: number;
  epoch: string;
  /** Acknowledged by JetStream up to here (as last written, or about to be). */
  acked: LogPosition;
  /** Where the next read starts: `acked`, or past the batch in flight. */
  read: LogPosition;
  /** How far a publish may have gone beyond `acked`, and since when: see outbox_cursors. */
  reach: LogPosition | null;
  reachAtMs: number | null;
  /**
   * Re-reading rows a relay may have published (after a takeover or a failed batch): the reads pass
   * `reach` so those rows come back `uncertain`, until `acked` covers it. `since` is `acked` when the
   * recovery began.
   */
  recovery: { readonly reach: LogPosition; readonly atMs: number; readonly since: LogPosition } | null;
  /** A row of its own failed: the partition waits until then (epoch ms). */
  retryAtMs: number;
  /** Its last read filled its share of the batch: more is probably waiting. */
  busy: boolean;
}

/** One partition's part of a batch. */
interface Slice {
  readonly state: Partition;
  readonly from: LogPosition;
  readonly read: PartitionRead;
}

const tracer = relayTracer();
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The relay loop. It holds some of the outbox's partitions (shared with the other relays through
 * FOR UPDATE SKIP LOCKED, see claimPartitions) and reads each as a log: the rows committed past its
 * cursor, in order, with nothing written per row. A batch is published all at once; its cursors move
 * once every publish of it was acknowledged, and before publishing the relay records how far the batch
 * reaches, so whoever takes over after a crash knows which rows may be in the stream already. It keeps
 * going while batches come back full, then waits for a notification or the poll interval. Outages of
 * NATS or PostgreSQL pause it with capped, jittered backoff; it never exits on its own.
 */
export function createRelay(deps: RelayDeps) {
  const { db, nats, metrics, settings } = deps;
  const log = deps.logger.child({ component: 'relay' });
  const stopping = new AbortController();
  const held = new Map<number, Partition>();
  // A relay that starts beside others gets its share within two of these (one for the holder to give
  // partitions back, one to take them): a 1 s interval left a relay out of a 0.5 s backlog drain.
  // The claim costs 1-2 ms and writes nothing while the shares stand.
  const rebalanceMs = settings.rebalanceIntervalMs ?? 250;
  let nextRebalance = 0;
  let woken = false;
  let wake: (() => void) | undefined;
  let running: Promise<void> | undefined;
  let databaseUp = true;

  function notify(): void {
    woken = true;
    wake?.();
  }

  /** Waits for a notification, the poll interval, a partition's retry time, or stop. */
  async function idle(): Promise<void> {
    if (woken || stopping.signal.aborted) return;
    const retryIn = Math.min(
      ...[...held.values()].map((p) => p.retryAtMs - Date.now()).filter((ms) => ms > 0),
    );
    const rebalanceIn = nextRebalance - Date.now();
    const waitMs = Math.max(1, Math.min(settings.pollIntervalMs, retryIn, rebalanceIn));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
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

  /** Takes, renews and gives back partitions; new ones start from their cursor as last written. */
  async function rebalance(): Promise<void> {
    const claim = await claimPartitions(db, {
      relayId: settings.relayId,
      leaseMs: settings.leaseMs,
      known: new Map([...held.values()].map((p) => [p.partition, p.epoch])),
    });
    nextRebalance = Date.now() + rebalanceMs;
    const keep = new Set(claim.held);
    for (const partition of [...held.keys()]) {
      if (!keep.has(partition)) {
        held.delete(partition);
        log.info({ partition }, 'partition given up');
      }
    }
    for (const taken of claim.acquired) {
      held.set(taken.partition, fromCursor(taken));
      log.info(
        { partition: taken.partition, recovering: taken.reach !== null },
        taken.reach === null
          ? 'partition taken'
          : 'partition taken; re-reading what its last relay may have sent',
      );
    }
    metrics.partitionsHeld.set(held.size);
  }

  /*
   * Batches are pipelined two deep: while batch N waits for its PubAcks, the read of batch N+1 runs.
   * N+1 is published only after N is acknowledged and its cursors are written together with N+1's
   * reach (one statement), so the stream receives each partition's rows in log order. One at a time
   * left the relay idle more than half the time (measured with the lease-and-mark design, whose
   * claim, publish and mark each took a third of a batch). Publishing N+1 before N's PubAcks (two
   * batches in flight) drained 100,000 rows 2% faster (medians of five alternating runs, 68.7k against
   * 67.3k events/s) with the relay as busy (0.91-0.93 of a core): not worth a second batch in flight.
   */
  let inFlight: Promise<{ readonly slices: Slice[]; readonly error?: unknown }> | undefined;

  /**
   * Waits for the batch in flight to be acknowledged; its cursors have then moved in memory. When it
   * failed, what it did acknowledge is written at once, and the failure rethrown.
   */
  async function settle(): Promise<Slice[]> {
    const batch = inFlight;
    inFlight = undefined;
    const outcome = await batch;
    if (outcome === undefined) return [];
    if (outcome.error !== undefined) {
      await writeSettled(outcome.slices).catch((err) =>
        log.debug({ err }, 'could not write the cursors of a failed batch; they are written with the next'),
      );
      throw outcome.error;
    }
    return outcome.slices;
  }

  /**
   * Reads a batch and starts publishing it; the previous batch is finished meanwhile. Returns whether
   * a partition had more rows than it was given room for; throws when NATS or the database is
   * unavailable.
   */
  async function step(): Promise<boolean> {
    if (Date.now() >= nextRebalance || held.size === 0) {
      await writeSettled(await settle());
      await rebalance();
    }
    woken = false; // a notification from here on means "rows may have committed after this read"
    const started = performance.now();
    const now = Date.now();
    const ready = [...held.values()].filter((p) => p.retryAtMs <= now);
    const requested = ready.map((p) => p.read);
    // The batch is shared by the partitions that had more than their share last time (all of them
    // when none had): a backlog left in a few partitions still drains a full batch per step.
    const busy = ready.filter((p) => p.busy).length || ready.length;
    const limit = Math.max(MIN_PARTITION_BATCH, Math.ceil(settings.batchSize / Math.max(1, busy)));
    const reading = readOutboxLog(
      db,
      ready.map((p) => ({ partition: p.partition, from: p.read, reach: p.recovery?.reach ?? null })),
      limit,
    );
    // Awaited below, after the previous batch; without a handler now, a read that fails while we wait
    // (database down) would be an unhandled rejection, which ends a Node process.
    reading.catch(() => {});
    // The previous batch failed (an outage, or the database refused its writes): finish() has put
    // each partition it touched back where its acknowledged rows end; this read is dropped with it.
    const settled = await settle();
    const reads = await reading;
    const slices: Slice[] = [];
    let rows = 0;
    let more = false;
    for (const [i, read] of reads.entries()) {
      const state = ready[i] as Partition;
      state.busy = read.events.length >= limit;
      more ||= state.busy;
      // Taken by another relay meanwhile, or sent back by a failed row of the batch just settled:
      // this read started from a position that is no longer the partition's.
      if (held.get(state.partition) !== state || state.read !== requested[i]) continue;
      if (read.events.length === 0) {
        // Nothing committed past the position, and nothing is in flight: the position moves on in
        // memory. A cursor is written only with rows (a restart re-reads an empty window for nothing).
        state.acked = read.next;
        state.read = read.next;
        continue;
      }
      slices.push({ state, from: state.read, read });
      state.read = read.next;
      rows += read.events.length;
    }
    try {
      await writeSettled(settled, slices);
    } catch (err) {
      // Not published, so not past: the next read of these partitions starts where this one did.
      for (const s of slices) s.state.read = s.from;
      throw err;
    }
    if (rows === 0) return more;
    let alreadyInStream: ReadonlySet<string>;
    try {
      alreadyInStream = await resolveBeyondWindow(slices);
    } catch (err) {
      for (const s of slices) restartFromAcked(s.state);
      throw new NatsUnavailable('could not look up rows that may be in the stream', { cause: err });
    }
    const events = slices.flatMap((s) => s.read.events);
    inFlight = publishAll(events, alreadyInStream)
      .then((outcomes) => finish(slices, events, outcomes, started))
      .then(
        (done) => ({ slices: done }),
        (error: unknown) => {
          // Failed before its partitions were settled one by one: every one not known to be past this
          // batch is read again from what was acknowledged.
          for (const s of slices) if (s.state.acked !== s.read.next) restartFromAcked(s.state);
          return { slices, error };
        },
      );
    return more;
  }

  /**
   * Writes the cursors of an acknowledged batch and the reach of the next one, in one statement,
   * before the next one is published. A partition whose write is refused was taken by another relay.
   */
  async function writeSettled(settled: readonly Slice[], next: readonly Slice[] = []): Promise<void> {
    const touched = new Set([...settled.map((s) => s.state), ...next.map((s) => s.state)]);
    if (touched.size === 0) return;
    const nextByState = new Map(next.map((s) => [s.state, s]));
    const nowMs = Date.now();
    const writes: CursorWrite[] = [];
    for (const state of touched) {
      if (state.recovery && reaches(state.acked, state.recovery)) state.recovery = null;
      const ahead = nextByState.get(state);
      if (state.recovery) {
        // Rows up to the old reach may be in the stream since its time: keep saying so.
        const reachAhead = ahead && reaches(ahead.read.next, state.recovery);
        state.reach = reachAhead ? ahead.read.next : state.recovery.reach;
        state.reachAtMs = state.recovery.atMs;
      } else if (ahead) {
        state.reach = ahead.read.next;
        state.reachAtMs = nowMs;
      } else {
        state.reach = null;
        state.reachAtMs = null;
      }
      writes.push({
        partition: state.partition,
        epoch: state.epoch,
        acked: state.acked,
        reach: state.reach,
        reachAtMs: state.reachAtMs,
      });
    }
    const written = await writeCursors(db, settings.relayId, writes);
    for (const state of touched) {
      if (!written.has(state.partition)) {
        held.delete(state.partition);
        metrics.partitionsHeld.set(held.size);
        log.warn({ partition: state.partition }, 'partition taken by another relay; its rows are theirs now');
      }
    }
    // A partition lost between the read and here is not published by this relay.
    for (const s of next) if (!written.has(s.state.partition)) s.read.events.length = 0;
  }

  /**
   * Rows that may be in the stream since longer ago than its duplicate window (less the publish
   * timeout): a re-publish could be stored twice, so they are looked up in the stream from the time
   * of the earliest publish that may have sent them; those found are not sent again. Rows within the
   * window are left to Nats-Msg-Id, and nothing is looked up on the normal path.
   */
  async function resolveBeyondWindow(slices: readonly Slice[]): Promise<ReadonlySet<string>> {
    const windowMs = nats.streamDuplicateWindowMs;
    if (windowMs === undefined) return new Set();
    const margin = settings.publishTimeoutMs ?? 5000;
    const uncertain: { event: LogEvent; sinceMs: number }[] = [];
    for (const s of slices) {
      const atMs = s.state.recovery?.atMs;
      if (atMs === undefined || Date.now() - atMs + margin < windowMs) continue;
      for (const event of s.read.events) if (event.uncertain) uncertain.push({ event, sinceMs: atMs });
    }
    if (uncertain.length === 0) return new Set();
    const found = new Set<string>();
    for (const [subject, group] of Map.groupBy(uncertain, (u) => u.event.subject)) {
      const since = new Date(Math.min(...group.map((u) => u.sinceMs)) - LOOKUP_MARGIN_MS);
      for (const id of await nats.findInStream(subject, since, new Set(group.map((u) => u.event.id))))
        found.add(id);
    }
    metrics.resolved.inc({ outcome: 'found' }, found.size);
    metrics.resolved.inc({ outcome: 'absent' }, uncertain.length - found.size);
    log.info(
      { rows: uncertain.length, found: found.size, windowMs },
      'looked up rows that may have been published beyond the duplicate window',
    );
    return found;
  }

  /**
   * Once every publish of the batch has an outcome: cursors move past what was acknowledged. A row
   * that failed for a reason of its own holds its partition at that row (retried after a backoff, dead
   * after RELAY_MAX_ATTEMPTS); an outage fails the batch, and it is read again from what was acked.
   */
  async function finish(
    slices: readonly Slice[],
    events: readonly LogEvent[],
    outcomes: readonly (PublishOutcome | undefined)[],
    started: number,
  ): Promise<Slice[]> {
    const failedAt = new Map<string, unknown>();
    const failures: RowFailure[] = [];
    let transient = 0;
    let firstTransient: unknown;
    const published: string[] = [];
    outcomes.forEach((outcome, i) => {
      const event = events[i] as LogEvent;
      if (!(outcome instanceof Error)) {
        published.push(event.id);
        return;
      }
      failedAt.set(event.id, outcome);
      if (outcome instanceof RowPublishError) failures.push({ id: event.id, error: outcome.message });
      else {
        transient++;
        firstTransient ??= outcome;
      }
    });
    await deps.afterPublish?.(published);
    metrics.published.inc(published.length);

    // Each partition moves past what was acknowledged before its first failure, whatever failed in
    // the others: a publish that timed out holds back its own partition only. From the failed row on,
    // the partition is read again (the rows after it that were published come back as re-publishes,
    // recognised by Nats-Msg-Id).
    for (const s of slices) {
      const firstFailed = s.read.events.findIndex((e) => failedAt.has(e.id));
      if (firstFailed < 0) {
        s.state.acked = s.read.next;
        continue;
      }
      s.state.acked = before(s, firstFailed);
      restartFromAcked(s.state);
    }
    if (transient > 0) {
      metrics.failed.inc({ kind: 'transient' }, transient);
      const outage = new NatsUnavailable(`${transient} of ${events.length} publishes failed`, {
        cause: firstTransient,
      });
      // The outage is the error; row failures of the same batch are still counted if they can be.
      if (failures.length > 0) {
        await countRowFailures(slices, failures).catch((err) =>
          log.warn({ err, rows: failures.length, cause: outage.message }, 'could not record row failures'),
        );
      }
      throw outage;
    }
    if (failures.length > 0) {
      await countRowFailures(slices, failures);
    } else {
      // A row that failed before is read again as uncertain; once it is in the stream, its failure
      // count is history.
      const retried = events.filter((e) => e.uncertain).map((e) => e.id);
      if (retried.length > 0) await clearOutboxFailures(db, retried);
    }
    metrics.batchSize.observe(events.length);
    metrics.batchDuration.observe((performance.now() - started) / 1000);
    log.debug({ rows: events.length, published: published.length, failed: failures.length }, 'batch');
    return [...slices];
  }

  /** Counts an attempt against each row that failed by itself; a partition waits before its retry. */
  async function countRowFailures(slices: readonly Slice[], failures: readonly RowFailure[]): Promise<void> {
    metrics.failed.inc({ kind: 'row' }, failures.length);
    const results = await recordOutboxFailures(db, failures, settings.maxAttempts);
    for (const r of results) {
      const error = failures.find((f) => f.id === r.id)?.error;
      if (r.dead) {
        metrics.dead.inc();
        log.error(
          { outbox_id: r.id, attempts: r.attempts, error },
          'outbox row is dead: moved to outbox_dead',
        );
      } else {
        log.warn({ outbox_id: r.id, attempts: r.attempts, error }, 'publish failed for this row; will retry');
      }
      const slice = slices.find((s) => s.read.events.some((e) => e.id === r.id));
      if (slice && !r.dead) {
        const delay = cappedDelay(settings.retryDelayMs, 300_000, r.attempts - 1);
        slice.state.retryAtMs = Math.max(slice.state.retryAtMs, Date.now() + delay);
      }
    }
  }

  /**
   * Publishes the events of a batch at once, in order, except those found in the stream already;
   * resolves with an outcome per event (undefined for those). Never rejects.
   */
  async function publishAll(
    events: readonly LogEvent[],
    alreadyInStream: ReadonlySet<string>,
  ): Promise<(PublishOutcome | undefined)[]> {
    const messages: OutgoingMessage[] = [];
    const sentAt: number[] = [];
    const spans: Span[] | undefined = deps.traced ? [] : undefined;
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as LogEvent;
      if (alreadyInStream.has(event.id)) continue;
      const headers =
        event.headers === '{}' ? NO_HEADERS : (JSON.parse(event.headers) as Record<string, string>);
      const span = spans && startPublishSpan(tracer, { id: event.id, subject: event.subject, headers });
      if (span) spans.push(span);
      messages.push({
        id: event.id,
        subject: event.subject,
        // Buffer.from takes small buffers from Node's shared pool; TextEncoder.encode gave each
        // payload an ArrayBuffer of its own (4.7% of the relay's CPU with --cpu-prof, plus their GC).
        payload: Buffer.from(event.payload),
        headers: span ? publishHeaders(span, headers) : headers,
      });
      sentAt.push(i);
    }
    const sent = await nats.publishBatch(messages);
    // Dense: finish() counts an event left out (undefined) as published, and forEach skips holes.
    const outcomes: (PublishOutcome | undefined)[] = new Array(events.length).fill(undefined);
    // Observed when the batch is acknowledged: a drain's batch of 2,000 takes some 30 ms, a batch at
    // a steady rate a few rows and about a millisecond.
    const nowMs = Date.now();
    for (let k = 0; k < sent.length; k++) {
      const outcome = sent[k] as PublishOutcome;
      const event = events[sentAt[k] as number] as LogEvent;
      outcomes[sentAt[k] as number] = outcome;
      const span = spans?.[k];
      if (outcome instanceof Error) {
        if (span) endPublishSpan(span, { error: outcome });
        continue;
      }
      if (span) endPublishSpan(span, { duplicate: outcome.duplicate });
      metrics.commitToAck.observe(Math.max(0, (nowMs - event.createdAtMs) / 1000));
      if (outcome.duplicate) metrics.duplicates.inc();
    }
    return outcomes;
  }

  /** Finishes what is in flight as far as it can and gives every partition back. */
  async function letGo(): Promise<void> {
    try {
      await writeSettled(await settle());
    } catch (err) {
      log.warn({ err }, 'could not finish the last batch; it will be read again');
    }
    if (held.size === 0) return;
    try {
      await releasePartitions(db, settings.relayId);
      log.info({ partitions: held.size }, 'partitions given back');
    } catch (err) {
      log.warn({ err }, 'could not give the partitions back; they return when the lease ends');
    }
    held.clear();
    metrics.partitionsHeld.set(0);
  }

  async function loop(): Promise<void> {
    const backoff = new Backoff(100, settings.backoffMaxMs);
    const signal = stopping.signal;
    while (!signal.aborted) {
      if (!nats.ready) {
        // Nothing of ours can be published: let the other relays have our partitions meanwhile.
        await letGo();
        await nats.waitReady(signal);
        continue;
      }
      try {
        // The batch in flight is finished by the next step, concurrently with its read, so a row
        // that commits meanwhile does not wait for the previous batch's cursor write.
        const more = await step();
        if (!databaseUp) {
          databaseUp = true;
          log.info('database reachable again');
        }
        backoff.reset();
        // A partition that filled its share has more waiting: keep reading without waiting.
        if (!more) await idle();
      } catch (err) {
        const delay = backoff.next();
        if (err instanceof NatsUnavailable) {
          log.warn({ err, retryInMs: delay }, 'nats unavailable; the batch will be read again');
        } else if (isDatabaseUnavailable(err)) {
          if (databaseUp) log.warn({ err, retryInMs: delay }, 'database unavailable; retrying');
          databaseUp = false;
        } else {
          log.error({ err, retryInMs: delay }, 'relay batch failed; retrying');
        }
        // Whatever failed, the next step starts with a fresh look at which partitions are ours.
        nextRebalance = 0;
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
    /**
     * Stops reading, lets the batch in flight finish (publish, cursor), then gives the partitions
     * back so another relay takes them at once. Idempotent.
     */
    async stop(): Promise<void> {
      stopping.abort();
      await running;
      await letGo();
    },
    /** True while the database answered the last batch. */
    get databaseUp(): boolean {
      return databaseUp;
    },
    /** The partitions this relay holds now. */
    get partitions(): readonly number[] {
      return [...held.keys()].sort((a, b) => a - b);
    },
  };
}
export type Relay = ReturnType<typeof createRelay>;

/** A batch could not be published because NATS was unavailable; it will be read again. */
export class NatsUnavailable extends Error {
  override name = 'NatsUnavailable';
}

function fromCursor(taken: HeldPartition): Partition {
  const state: Partition = {
    partition: taken.partition,
    epoch: taken.epoch,
    acked: taken.acked,
    read: taken.acked,
    reach: taken.reach,
    reachAtMs: taken.reachAtMs,
    recovery: null,
    retryAtMs: 0,
    busy: false,
  };
  if (taken.reach !== null) beginRecovery(state, taken.reach, taken.reachAtMs ?? Date.now());
  return state;
}

/** Reads start again from what was acknowledged; what went beyond it may be in the stream. */
function restartFromAcked(state: Partition): void {
  if (state.reach !== null && !state.recovery)
    beginRecovery(state, state.reach, state.reachAtMs ?? Date.now());
  state.read = state.recovery ? pinned(state.acked, state.recovery.reach) : state.acked;
}

function beginRecovery(state: Partition, reach: LogPosition, atMs: number): void {
  state.recovery = { reach, atMs, since: state.acked };
  state.read = pinned(state.acked, reach);
}

/*
 * A reach is one read ahead of the acknowledged position it was written with. When it stops inside a
 * window, the re-read must walk that same window (same target snapshot), so that "up to the reach" is
 * the same rows in the same order; a fresh target would add rows committed since, in between.
 */
function pinned(acked: LogPosition, reach: LogPosition): LogPosition {
  if (acked.target === null && reach.target !== null && reach.snapshot === acked.snapshot) {
    return { ...acked, target: reach.target };
  }
  return acked;
}

/**
 * Has a position gone past every row the recovery's reach may cover? A reach ending a window (no
 * target) is passed once the position leaves the window where the recovery began: the next window
 * boundary is that window's end, or a snapshot taken later. A reach inside a window is passed once
 * the position leaves that window or is at or after it in (xid, seq) order.
 */
function reaches(position: LogPosition, recovery: NonNullable<Partition['recovery']>): boolean {
  const { reach, since } = recovery;
  if (reach.target === null) return position.snapshot !== since.snapshot;
  if (position.snapshot !== reach.snapshot) return true;
  return position.target === reach.target && position.afterXid !== null && !isBefore(position, reach);
}

/** Is position `a` strictly before `b` in the (xid, seq) order of one window? */
function isBefore(a: LogPosition, b: LogPosition): boolean {
  const ax = BigInt(a.afterXid ?? '0');
  const bx = BigInt(b.afterXid ?? '0');
  if (ax !== bx) return ax < bx;
  return BigInt(a.afterSeq ?? '0') < BigInt(b.afterSeq ?? '0');
}

/** The position just before the `index`-th row of a slice. */
function before(slice: Slice, index: number): LogPosition {
  if (index === 0) return slice.from;
  const previous = slice.read.events[index - 1] as LogEvent;
  const next = slice.read.next;
  const target = next.target ?? next.snapshot;
  return { snapshot: slice.from.snapshot, target, afterXid: previous.xid, afterSeq: previous.seq };
}
