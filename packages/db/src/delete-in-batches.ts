import { sleep } from '@orders/lifecycle';

export interface DeleteInBatchesOptions {
  /** Once aborted, no further batch starts (the one running finishes) and a pause ends early. */
  readonly signal?: AbortSignal | undefined;
  /** After every batch, the last (short, maybe empty) one included: its count and the running total. */
  readonly onBatch?: ((deleted: number, total: number) => void) | undefined;
  /** Wait between full batches, so that other writers and vacuum get the table and the WAL does not spike. */
  readonly pauseMs?: number | undefined;
}

/**
 * Retention's loop: calls `deleteBatch` (one DELETE of at most `batchSize` rows, returning how many it
 * deleted) until a batch comes back short, or `signal` aborts. Returns the rows deleted.
 *
 * Batches, so that no statement holds locks or writes WAL for long. A short batch ends the run, not an
 * empty one: it found nothing more to delete (or only rows another session holds, which a SKIP LOCKED
 * batch passes over), so asking again at once would cost a statement for nothing or spin on those
 * rows; what becomes old enough meanwhile is the next scheduled run's.
 */
export async function deleteInBatches(
  deleteBatch: () => Promise<number>,
  batchSize: number,
  options: DeleteInBatchesOptions = {},
): Promise<number> {
  // No batch can come back short of a size below 1: the loop would never end.
  if (!(batchSize >= 1)) throw new RangeError(`batch size must be at least 1, got ${batchSize}`);
  let total = 0;
  for (;;) {
    if (options.signal?.aborted) return total;
    const deleted = await deleteBatch();
    total += deleted;
    options.onBatch?.(deleted, total);
    if (deleted < batchSize) return total;
    if (options.pauseMs) await sleep(options.pauseMs, options.signal);
  }
}
