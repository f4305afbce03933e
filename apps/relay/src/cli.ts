import { ConfigError, loadRelayCliConfig } from '@orders/config';
import { createDb } from '@orders/db';
import { createLogger } from '@orders/logger';
import { out, UsageError } from './cli/args.js';
import { prune } from './cli/prune.js';
import { REPLAY_RETRIES, replay } from './cli/replay.js';
import { requeueDead } from './cli/requeue-dead.js';
import { status } from './cli/status.js';

// `pnpm relay <command>` (in the image: `node dist/cli.js <command>`): the operator's tool for the
// outbox. Configuration comes from the same environment as the relay; results go to stdout as text
// (or JSON with --json), progress and warnings to stderr, logs (warn and up) to stderr as JSON.
// This file dispatches; each command is its own file under cli/.

const USAGE = `usage: relay <command> [options]

commands:
  status [--json]
      pending and dead rows, the oldest pending row's age, the partitions and who holds them,
      the last publish, the stream and its duplicate window
  replay --since <time> [--until <time>] [--event-type <type>] [--retries <n>] [--dry-run] [--json]
      publish stored (already published) events again, oldest first, for a stream that lost
      data; resumable: run the same command again after an interruption. A chunk NATS does not
      take is retried up to --retries times (default ${REPLAY_RETRIES}) with exponential backoff
      capped at RELAY_BACKOFF_MAX_MS; then the replay stops with exit code 1, its checkpoint kept
  requeue-dead [--id <uuid>]...
      put dead letters (all, or the given ones) back in the log, with their original ids
  prune --older-than <duration> [--batch-size <n>]
      delete published rows created before now - duration, in small batches; rows no
      cursor has read and dead letters are never deleted

<time>: an ISO 8601 timestamp (2026-11-26T08:00:00Z) or a duration ago (90m, 12h, 7d)
<duration>: 90s, 30m, 12h, 7d, 2w, 1h30m`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE);
    return command === undefined ? 2 : 0;
  }
  const config = loadRelayCliConfig();
  const logger = createLogger({
    name: `${config.serviceName}-relay-cli`,
    level: config.logLevel,
    destination: process.stderr,
  });
  const db = createDb(
    { ...config.database, poolSize: 2 },
    // JIT off as in the relay (main.ts): status reads the backlog with the relay's own query.
    { logger, applicationName: `${config.serviceName}-relay-cli`, sessionSettings: { jit: 'off' } },
  );
  const context = { config, db, logger };
  try {
    switch (command) {
      case 'status':
        return await status(context, rest);
      case 'replay':
        return await replay(context, rest);
      case 'requeue-dead':
        return await requeueDead(context, rest);
      case 'prune':
        return await prune(context, rest);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } finally {
    await db.destroy();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`relay: ${err.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (err instanceof ConfigError) {
    console.error(err.message);
    process.exitCode = 2;
  } else {
    console.error(`relay: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
