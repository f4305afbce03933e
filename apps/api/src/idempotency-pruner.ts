import { type Db, deleteInBatches, pruneIdempotencyKeys, safeError } from '@orders/db';
import { startHousekeeping } from '@orders/lifecycle';
import type { Logger } from '@orders/logger';

// Expired Idempotency-Keys go in batches of 5,000 every 10 minutes, jittered so that several API
// processes spread out; the first run 30 s after start, so an API restarted often still prunes.
const PRUNE_EVERY_MS = 10 * 60_000;
const FIRST_RUN_MS = 30_000;
const BATCH = 5000;

/** The API's own housekeeping (as the relay's retention): never on the request path. */
export function startIdempotencyPruner(options: { readonly db: Db; readonly logger: Logger }): {
  stop(): Promise<void>;
} {
  const { db, logger } = options;
  return startHousekeeping({
    intervalMs: PRUNE_EVERY_MS,
    firstRunMs: FIRST_RUN_MS,
    async run() {
      const deleted = await deleteInBatches(() => pruneIdempotencyKeys(db, BATCH), BATCH);
      if (deleted > 0) logger.info({ deleted }, 'pruned expired idempotency keys');
    },
    onError: (err) => logger.warn({ err: safeError(err) }, 'idempotency key prune failed; next run retries'),
  });
}
