import { requeueDeadRows } from '@orders/db';
import { UUID_PATTERN } from '@orders/events';
import { out, parse, UsageError } from './args.js';
import type { CommandContext } from './context.js';

// `relay requeue-dead [--id <uuid>]...`: dead letters back into the log with their original ids.

export async function requeueDead({ db }: CommandContext, args: readonly string[]): Promise<number> {
  const { values } = parse(args, { id: { type: 'string', multiple: true } });
  const ids = values.id;
  for (const id of ids ?? [])
    if (!UUID_PATTERN.test(id)) throw new UsageError(`--id ${JSON.stringify(id)} is not a UUID`);
  const requeued = await requeueDeadRows(db, ids);
  out(`requeued ${requeued.length} dead row(s)`);
  if (ids) {
    const missed = ids.filter((id) => !requeued.includes(id.toLowerCase()));
    for (const id of missed) out(`  ${id}: not a dead row (unknown, published, or not dead)`);
    return missed.length > 0 ? 1 : 0;
  }
  return 0;
}
