import { type Db, pruneIdempotencyKeys, safeError } from '@orders/db';
import type { Logger } from '@orders/logger';

// Expired Idempotency-Keys go in batches of 5,000 every 10 minutes, jittered so that several API
// processes spread out; the first run 30 s after start, so an API restarted often still prunes.
const PRUNE_EVERY_MS = 10 * 60_000;
const FIRST_RUN_MS = 30_000;
const BATCH = 5000;

/** The API's own housekeeping (shaped like the relay's retention): never on the request path. */
export function startIdempotencyPruner(options: { readonly db: Db; readonly logger: Logger }): {
  stop(): Promise<void>;
} {
  const { db, logger } = options;
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = (async () => {
      try {
        let deleted = 0;
        for (let n = BATCH; n === BATCH; deleted += n) n = await pruneIdempotencyKeys(db, BATCH);
        if (deleted > 0) logger.info({ deleted }, 'pruned expired idempotency keys');
      } catch (err) {
        logger.warn({ err: safeError(err) }, 'idempotency key prune failed; next run retries');
      }
    })();
  };
  const every = setInterval(run, PRUNE_EVERY_MS * (0.9 + Math.random() * 0.2));
  every.unref();
  const first = setTimeout(run, FIRST_RUN_MS);
  first.unref();
  return {
    async stop() {
      clearInterval(every);
      clearTimeout(first);
      // A run in flight finishes before the pool closes.
      await running;
    },
  };
}
