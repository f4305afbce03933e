import { checkpointReplay, type Db, nextReplayRows, type ReplayCheckpoint } from '@orders/db';
import { Backoff, sleep } from '@orders/lifecycle';
import { RowPublishError } from '../nats/errors.js';
import type { Publisher } from '../nats/publisher.js';
import { formatDuration } from './args.js';

const REPLAY_CHUNK = 500;
/** Failed rows listed in the outcome; the count covers them all. */
const FAILURES_SHOWN = 20;

export interface ReplayLoopOptions {
  readonly db: Db;
  readonly publisher: Publisher;
  /** The replay job, as started or as found unfinished (its checkpoint is where sending resumes). */
  readonly job: ReplayCheckpoint;
  /** Retries of one chunk NATS did not take (transient failures) before the replay stops. */
  readonly retries: number;
  readonly backoffMaxMs: number;
  /** Aborted: the chunk in flight is finished (or left unacknowledged), then the loop returns. */
  readonly signal: AbortSignal;
  /** Progress and retry lines for the operator. */
  readonly say: (line: string) => void;
}

export interface ReplayOutcome {
  /** Events sent and checkpointed in all, this run and earlier ones. */
  readonly sent: number;
  readonly stored: number;
  readonly duplicates: number;
  /** Rows the stream refused for good. */
  readonly failedCount: number;
  /** The first of them, with why. */
  readonly failed: readonly { readonly id: string; readonly error: string }[];
  /** Why the replay stopped before its end, when NATS did not take a chunk. */
  readonly gaveUp?: string;
  readonly finished: boolean;
}

/**
 * Sends a replay's rows chunk by chunk from its checkpoint, checkpointing after each acknowledged
 * chunk, so an interrupted replay resumes where it stopped.
 */
export async function runReplayLoop(o: ReplayLoopOptions): Promise<ReplayOutcome> {
  const { db, publisher, job, signal, say } = o;
  const encoder = new TextEncoder();
  let sent = job.sent;
  let lastSeq = job.lastSeq;
  let stored = 0;
  let duplicates = 0;
  let failedCount = 0;
  const failed: { id: string; error: string }[] = [];
  let gaveUp: string | undefined;
  let lastReport = 0;
  while (!signal.aborted) {
    const rows = await nextReplayRows(db, job, lastSeq, REPLAY_CHUNK);
    if (rows.length === 0) break;
    // The whole chunk in flight at once; a transient failure retries the chunk (ids make that
    // safe), a bounded number of times with backoff: NATS that does not take it for that long
    // needs an operator, and the checkpoint lets the same command resume.
    const backoff = new Backoff(250, o.backoffMaxMs);
    let acked = false;
    for (let attempt = 0; !signal.aborted; attempt++) {
      const results = await publisher.publishBatch(
        rows.map((r) => ({
          id: r.id,
          subject: r.subject,
          payload: encoder.encode(r.payload),
          headers: r.headers,
        })),
      );
      const transient = results.find(
        (r): r is Error => r instanceof Error && !(r instanceof RowPublishError),
      );
      if (!transient) {
        results.forEach((r, i) => {
          if (!(r instanceof Error)) {
            if (r.duplicate) duplicates++;
            else stored++;
          } else {
            failedCount++;
            if (failed.length < FAILURES_SHOWN) failed.push({ id: rows[i]?.id ?? '?', error: r.message });
          }
        });
        acked = true;
        break;
      }
      const reason = transient.message;
      if (attempt >= o.retries) {
        gaveUp =
          `NATS did not take the chunk after seq ${lastSeq} (${rows.length} events) in ${attempt + 1} ` +
          `attempt(s): ${reason}`;
        break;
      }
      const delay = backoff.next();
      say(
        `NATS did not take the chunk (${reason}); retry ${attempt + 1} of ${o.retries} in ${formatDuration(delay)}`,
      );
      await sleep(delay, signal);
    }
    // Interrupted or given up before the chunk was acknowledged: it is not checkpointed, the next
    // run sends it again.
    if (!acked) break;
    sent += rows.length;
    lastSeq = rows[rows.length - 1]?.seq ?? lastSeq;
    await checkpointReplay(db, job.id, { sent, lastSeq, finished: false });
    if (Date.now() - lastReport > 1000) {
      lastReport = Date.now();
      say(`${sent} / ${job.total} (${Math.floor((100 * sent) / Math.max(1, job.total))}%)`);
    }
  }
  const finished = !signal.aborted && gaveUp === undefined;
  if (finished) await checkpointReplay(db, job.id, { sent, lastSeq, finished: true });
  return {
    sent,
    stored,
    duplicates,
    failedCount,
    failed,
    finished,
    ...(gaveUp !== undefined ? { gaveUp } : {}),
  };
}
