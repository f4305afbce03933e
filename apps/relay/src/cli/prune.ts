import { pruneOutbox } from '@orders/db';
import { durationArg, out, parse, UsageError } from './args.js';
import type { CommandContext } from './context.js';

// `relay prune --older-than <duration>`: published rows out, in small batches (the relay's own
// retention does the same on a schedule, see retention.ts).

export async function prune({ db }: CommandContext, args: readonly string[]): Promise<number> {
  const { values } = parse(args, { 'older-than': { type: 'string' }, 'batch-size': { type: 'string' } });
  if (values['older-than'] === undefined) throw new UsageError('prune needs --older-than <duration>');
  const olderThanMs = durationArg(values['older-than'], '--older-than');
  const batchSize = values['batch-size'] === undefined ? 2000 : Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new UsageError('--batch-size must be an integer from 1 to 100000');
  }
  const before = new Date(Date.now() - olderThanMs);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const deleted = await pruneOutbox(db, before, {
    batchSize,
    pauseMs: 10,
    signal: stop.signal,
    onBatch: (_n, total) => process.stderr.write(`prune: ${total} deleted\n`),
  });
  out(`deleted ${deleted} published row(s) created before ${before.toISOString()}`);
  return stop.signal.aborted ? 130 : 0;
}
