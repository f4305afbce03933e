import { deleteInBatches, safeError } from '@orders/db';
import { startHousekeeping } from '@orders/lifecycle';
import type { Logger } from '@orders/logger';
import type { Kysely } from 'kysely';
import { pruneInboxBatch } from './inbox.js';
import type { ConsumerTables } from './schema.js';

export interface InboxRetentionOptions {
  readonly db: Kysely<ConsumerTables>;
  readonly consumer: string;
  readonly logger: Logger;
  /** Inbox rows older than this are deleted. It bounds how old a replayed event may be and still be recognised. */
  readonly retentionMs: number;
  readonly intervalMs: number;
  readonly onPruned?: (rows: number) => void;
}

const BATCH = 2000;

/**
 * Deletes old inbox rows every interval (jittered, so several processes spread out), in batches of
 * 2,000 with a pause between them. The first run comes within a minute of start.
 */
export function startInboxRetention(options: InboxRetentionOptions): { stop(): Promise<void> } {
  const log = options.logger.child({ component: 'inbox-retention' });
  return startHousekeeping({
    intervalMs: options.intervalMs,
    firstRunMs: 60_000,
    async run(signal) {
      const before = new Date(Date.now() - options.retentionMs);
      const deleted = await deleteInBatches(
        () => pruneInboxBatch(options.db, options.consumer, before, BATCH),
        BATCH,
        { signal, pauseMs: 20, onBatch: (n) => options.onPruned?.(n) },
      );
      if (deleted > 0) log.info({ deleted, before: before.toISOString() }, 'pruned inbox rows');
    },
    onError: (err) => log.warn({ err: safeError(err) }, 'inbox prune failed; the next interval retries'),
  });
}
