import { safeError } from '@orders/db';
import type { Logger } from '@orders/logger';
import type { Kysely } from 'kysely';
import { pruneInboxBatch } from './inbox.js';
import type { ConsumerTables } from './schema.js';
import { sleep } from './sleep.js';

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
  const stopped = new AbortController();
  const log = options.logger.child({ component: 'inbox-retention' });
  const running = (async () => {
    let delay = Math.min(options.intervalMs, 60_000);
    while (!stopped.signal.aborted) {
      await sleep(delay * (0.9 + Math.random() * 0.2), stopped.signal);
      if (stopped.signal.aborted) return;
      delay = options.intervalMs;
      const before = new Date(Date.now() - options.retentionMs);
      try {
        let deleted = 0;
        for (let n = BATCH; n === BATCH && !stopped.signal.aborted; deleted += n) {
          n = await pruneInboxBatch(options.db, options.consumer, before, BATCH);
          options.onPruned?.(n);
          if (n === BATCH) await sleep(20, stopped.signal);
        }
        if (deleted > 0) log.info({ deleted, before: before.toISOString() }, 'pruned inbox rows');
      } catch (err) {
        log.warn({ err: safeError(err) }, 'inbox prune failed; the next interval retries');
      }
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await running;
    },
  };
}
