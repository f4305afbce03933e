import type { Db } from '@orders/db';
import { isDatabaseUnavailable, pruneOutbox, safeError } from '@orders/db';
import { startHousekeeping } from '@orders/lifecycle';
import type { Logger } from '@orders/logger';

export interface RetentionOptions {
  readonly db: Db;
  readonly logger: Logger;
  /** Published rows created longer ago than this are deleted. */
  readonly retentionMs: number;
  readonly intervalMs: number;
  readonly onPruned?: (rows: number) => void;
}

/**
 * The relay's own housekeeping: every interval (with jitter, so several relays spread out), deletes
 * published rows older than the retention in batches of 2,000, each its own short statement that skips
 * rows another session holds. Never touches unpublished or dead rows; never blocks the publish path.
 */
export function startRetention(options: RetentionOptions): { stop(): Promise<void> } {
  const log = options.logger.child({ component: 'retention' });
  return startHousekeeping({
    intervalMs: options.intervalMs,
    firstRunMs: 60_000,
    async run(signal) {
      const before = new Date(Date.now() - options.retentionMs);
      const started = performance.now();
      const deleted = await pruneOutbox(options.db, before, {
        batchSize: 2000,
        pauseMs: 20,
        signal,
        onBatch: (n) => options.onPruned?.(n),
      });
      if (deleted > 0) {
        log.info(
          { deleted, before: before.toISOString(), ms: Math.round(performance.now() - started) },
          'pruned published outbox rows',
        );
      }
    },
    // The claim loop reports database outages; here one line is enough, and the next interval retries.
    onError: (err) =>
      log.warn(
        { err: safeError(err), databaseUnavailable: isDatabaseUnavailable(err) },
        'outbox prune failed',
      ),
  });
}
