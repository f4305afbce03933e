import { parseArgs } from 'node:util';
import { ConfigError, loadRelayConfig, parseDuration, type RelayConfig, redactUrl } from '@orders/config';
import {
  checkpointReplay,
  countReplay,
  createDb,
  type Db,
  findUnfinishedReplay,
  nextReplayRows,
  outboxStatus,
  pruneOutbox,
  type ReplayCheckpoint,
  requeueDeadRows,
  startReplay,
} from '@orders/db';
import { createLogger, type Logger } from '@orders/logger';
import { connect } from 'nats';
import { Backoff, sleep } from './backoff.js';
import { natsConnectionOptions } from './nats/connection-options.js';
import { RowPublishError } from './nats/errors.js';
import { NatsLink } from './nats/link.js';

// `pnpm relay <command>` (in the image: `node dist/cli.js <command>`): the operator's tool for the
// outbox. Configuration comes from the same environment as the relay; results go to stdout as text
// (or JSON with --json), progress and warnings to stderr, logs (warn and up) to stderr as JSON.

const REPLAY_CHUNK = 500;
/** Retries of one chunk that NATS did not take (transient failures), before the replay stops. */
const REPLAY_RETRIES = 10;
/** Failed rows listed in the result; the count covers them all. */
const FAILURES_SHOWN = 20;

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

class UsageError extends Error {}

/** Results go to stdout, one line at a time (progress and warnings go to stderr). */
const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE);
    return command === undefined ? 2 : 0;
  }
  const config = loadRelayConfig();
  const logger = createLogger({
    name: `${config.serviceName}-relay-cli`,
    level: process.env['LOG_LEVEL'] ? config.logLevel : 'warn',
    destination: process.stderr,
  });
  const db = createDb(
    { ...config.database, poolSize: 2 },
    // JIT off as in the relay (main.ts): status reads the backlog with the relay's own query.
    { logger, applicationName: `${config.serviceName}-relay-cli`, sessionSettings: { jit: 'off' } },
  );
  try {
    switch (command) {
      case 'status':
        return await status(config, db, rest);
      case 'replay':
        return await replay(config, db, logger, rest);
      case 'requeue-dead':
        return await requeueDead(db, rest);
      case 'prune':
        return await prune(db, rest);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } finally {
    await db.destroy();
  }
}

// ---------------------------------------------------------------------------------------------- status

async function status(config: RelayConfig, db: Db, args: readonly string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' } });
  const outbox = await outboxStatus(db);
  const stream = await streamInfo(config);
  const report = {
    pending: outbox.pending,
    dead: outbox.dead,
    partitions_held: outbox.held,
    published: outbox.published,
    oldest_pending_age_seconds: Math.round(outbox.oldestAgeSeconds * 1000) / 1000,
    last_published_at: outbox.lastPublishedAt?.toISOString() ?? null,
    database: redactUrl(config.database.url),
    nats: redactUrl(config.nats.url),
    stream: config.nats.stream,
    ...stream,
  };
  if (values.json) {
    out(JSON.stringify(report));
  } else {
    const lines: [string, string][] = [
      ['pending', String(report.pending)],
      ['dead', String(report.dead)],
      ['partitions held', `${report.partitions_held} of ${outbox.partitions.length}`],
      ['published (kept)', String(report.published)],
      ['oldest pending age', report.pending ? formatDuration(outbox.oldestAgeSeconds * 1000) : '-'],
      ['last published', report.last_published_at ?? 'never'],
      ['database', report.database],
      ['nats', report.nats],
      ['stream', config.nats.stream],
      [
        'duplicate window',
        stream.duplicate_window_ms === undefined ? '-' : formatDuration(stream.duplicate_window_ms),
      ],
      ['stream messages', stream.stream_messages === undefined ? '-' : String(stream.stream_messages)],
    ];
    if (stream.stream_error) lines.push(['stream error', stream.stream_error]);
    for (const p of outbox.partitions.filter((p) => p.pending > 0)) {
      lines.push([
        `  partition ${p.partition}`,
        `${p.pending} pending, oldest ${formatDuration(p.oldestPendingAgeSeconds * 1000)}, ${p.owner ?? 'no relay'}`,
      ]);
    }
    const width = Math.max(...lines.map(([k]) => k.length));
    for (const [k, v] of lines) out(`${k.padEnd(width)}  ${v}`);
  }
  return 0;
}

/** The stream's duplicate window and size, read without creating anything; an error instead when unreachable. */
async function streamInfo(
  config: RelayConfig,
): Promise<{ duplicate_window_ms?: number; stream_messages?: number; stream_error?: string }> {
  let nc: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    nc = await connect({
      ...natsConnectionOptions({ ...config.nats, name: `${config.serviceName}-relay-cli` }),
      reconnect: false,
    });
    const jsm = await nc.jetstreamManager({ timeout: 3000 });
    const info = await jsm.streams.info(config.nats.stream);
    return {
      duplicate_window_ms: Math.round((info.config.duplicate_window ?? 0) / 1e6),
      stream_messages: info.state.messages,
    };
  } catch (err) {
    return { stream_error: err instanceof Error ? err.message : String(err) };
  } finally {
    await nc?.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------- replay

async function replay(config: RelayConfig, db: Db, logger: Logger, args: readonly string[]): Promise<number> {
  const { values } = parse(args, {
    since: { type: 'string' },
    until: { type: 'string' },
    'event-type': { type: 'string' },
    retries: { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.since === undefined) throw new UsageError('replay needs --since <time>');
  const retries = values.retries === undefined ? REPLAY_RETRIES : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0 || retries > 1000) {
    throw new UsageError('--retries must be an integer from 0 to 1000');
  }
  const now = new Date();
  const since = parseTime(values.since, now, '--since');
  const until = values.until === undefined ? undefined : parseTime(values.until, now, '--until');
  if (until !== undefined && until <= since) throw new UsageError('--until must be later than --since');
  const eventType = values['event-type'] ?? null;
  const stream = config.nats.stream;
  const say = (line: string) => process.stderr.write(`replay: ${line}\n`);

  const nats = new NatsLink({
    ...config.nats,
    duplicateWindowMs: config.duplicateWindowMs,
    publishTimeoutMs: config.publishTimeoutMs,
    backoffMaxMs: config.backoffMaxMs,
    name: `${config.serviceName}-relay-cli`,
    logger,
  });
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    say('interrupted: finishing the chunk in flight (again to quit at once)');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    // A rerun of the same command (same options as typed) resumes an interrupted replay, with the range
    // it had fixed then: `--since 2h` typed again later means the same replay, not a later window.
    const request = {
      stream,
      request: JSON.stringify({ since: values.since, until: values.until ?? null, event_type: eventType }),
    };
    let job: ReplayCheckpoint | undefined = await findUnfinishedReplay(db, request);
    const range = { since: job?.since ?? since, until: job?.until ?? until ?? now, eventType };

    // The duplicate window decides what the stream will recognise: ask NATS for the stream's own.
    nats.start();
    const connected = AbortSignal.any([stop.signal, AbortSignal.timeout(values['dry-run'] ? 3000 : 30_000)]);
    await nats.waitReady(connected);
    if (!nats.ready) {
      if (!values['dry-run']) {
        say(`NATS is not reachable at ${redactUrl(config.nats.url)}: nothing sent`);
        return 1;
      }
      say(`NATS is not reachable at ${redactUrl(config.nats.url)}: the duplicate window is unknown`);
    }
    const windowMs = nats.ready ? await nats.duplicateWindowMs() : undefined;
    const cutoff = new Date(Date.now() - (windowMs ?? 0));
    const count = await countReplay(db, range, cutoff);
    const remaining = job ? job.total - job.sent : count.total;

    const summary = {
      stream,
      since: range.since.toISOString(),
      until: range.until.toISOString(),
      event_type: eventType,
      events: count.total,
      duplicate_window_ms: windowMs ?? null,
      older_than_duplicate_window: windowMs === undefined ? null : count.olderThanCutoff,
      resumed_replay: job ? { id: job.id, started_at: job.startedAt.toISOString(), sent: job.sent } : null,
    };
    say(
      `${job ? `resuming replay #${job.id} (started ${job.startedAt.toISOString()}, ${job.sent} of ${job.total} sent): ` : ''}` +
        `${remaining} event(s) to send to stream ${stream}, created in [${summary.since}, ${summary.until})` +
        `${eventType ? ` of type ${eventType}` : ''}`,
    );
    if (windowMs !== undefined && count.olderThanCutoff > 0) {
      say(
        `warning: ${count.olderThanCutoff} of them were created (so published) more than ${formatDuration(windowMs)} ago ` +
          "(the stream's duplicate window): the stream no longer recognises their ids, so any it still " +
          'holds will arrive a second time; consumers must deduplicate by event id',
      );
    }
    if (values['dry-run']) {
      if (values.json) out(JSON.stringify({ ...summary, dry_run: true, sent: 0 }));
      else out(`dry run: would send ${remaining} event(s); nothing sent`);
      return 0;
    }
    if (!job) {
      if (count.total === 0) {
        if (values.json) out(JSON.stringify({ ...summary, sent: 0 }));
        else out('nothing to replay');
        return 0;
      }
      job = await startReplay(db, { ...request, ...range }, count.total);
    }

    let sent = job.sent;
    let lastSeq = job.lastSeq;
    let stored = 0;
    let duplicates = 0;
    // Rows the stream refused for good: all counted, the first few kept to show.
    let failedCount = 0;
    const failed: { id: string; error: string }[] = [];
    let gaveUp: string | undefined;
    let lastReport = 0;
    while (!stop.signal.aborted) {
      const rows = await nextReplayRows(db, job, lastSeq, REPLAY_CHUNK);
      if (rows.length === 0) break;
      const encoder = new TextEncoder();
      // The whole chunk in flight at once; a transient failure retries the chunk (ids make that
      // safe), a bounded number of times with backoff: NATS that does not take it for that long
      // needs an operator, and the checkpoint lets the same command resume.
      const backoff = new Backoff(250, config.backoffMaxMs);
      let acked = false;
      for (let attempt = 0; !stop.signal.aborted; attempt++) {
        const results = await Promise.allSettled(
          rows.map((r) =>
            nats.publish({
              id: r.id,
              subject: r.subject,
              payload: encoder.encode(r.payload),
              headers: r.headers,
            }),
          ),
        );
        const transient = results.find(
          (r): r is PromiseRejectedResult =>
            r.status === 'rejected' && !(r.reason instanceof RowPublishError),
        );
        if (!transient) {
          results.forEach((r, i) => {
            if (r.status === 'fulfilled') {
              if (r.value.duplicate) duplicates++;
              else stored++;
            } else {
              failedCount++;
              if (failed.length < FAILURES_SHOWN)
                failed.push({ id: rows[i]?.id ?? '?', error: (r.reason as Error).message });
            }
          });
          acked = true;
          break;
        }
        const reason =
          transient.reason instanceof Error ? transient.reason.message : String(transient.reason);
        if (attempt >= retries) {
          gaveUp =
            `NATS did not take the chunk after seq ${lastSeq} (${rows.length} events) in ${attempt + 1} ` +
            `attempt(s): ${reason}`;
          break;
        }
        const delay = backoff.next();
        say(
          `NATS did not take the chunk (${reason}); retry ${attempt + 1} of ${retries} in ${formatDuration(delay)}`,
        );
        await sleep(delay, stop.signal);
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
    const finished = !stop.signal.aborted && gaveUp === undefined;
    if (finished) await checkpointReplay(db, job.id, { sent, lastSeq, finished: true });
    if (gaveUp !== undefined)
      say(`error: ${gaveUp}; stopping (${sent} of ${job.total} sent and checkpointed)`);
    const result = {
      ...summary,
      replay_id: job.id,
      sent: sent - job.sent,
      stored,
      recognised_as_duplicates: duplicates,
      failed: failedCount,
      finished,
      ...(gaveUp !== undefined ? { error: gaveUp } : {}),
    };
    if (values.json) out(JSON.stringify({ ...result, failures: failed }));
    else {
      const verb = finished ? 'replayed' : gaveUp !== undefined ? 'stopped after' : 'interrupted after';
      out(
        `${verb} ${result.sent} event(s) to ${stream}: ${stored} stored, ` +
          `${duplicates} recognised as duplicates by the stream, ${failedCount} failed`,
      );
      for (const f of failed) out(`  failed ${f.id}: ${f.error}`);
      if (!finished) out('run the same command again to resume where it stopped');
    }
    if (gaveUp !== undefined) return 1;
    if (!finished) return 130;
    return failedCount > 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await nats.stop();
  }
}

// ---------------------------------------------------------------------------------------------- requeue-dead

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function requeueDead(db: Db, args: readonly string[]): Promise<number> {
  const { values } = parse(args, { id: { type: 'string', multiple: true } });
  const ids = values.id;
  for (const id of ids ?? [])
    if (!UUID.test(id)) throw new UsageError(`--id ${JSON.stringify(id)} is not a UUID`);
  const requeued = await requeueDeadRows(db, ids);
  out(`requeued ${requeued.length} dead row(s)`);
  if (ids) {
    const missed = ids.filter((id) => !requeued.includes(id.toLowerCase()));
    for (const id of missed) out(`  ${id}: not a dead row (unknown, published, or not dead)`);
    return missed.length > 0 ? 1 : 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------- prune

async function prune(db: Db, args: readonly string[]): Promise<number> {
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

// ---------------------------------------------------------------------------------------------- helpers

function parse<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(
  args: readonly string[],
  options: T,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function durationArg(text: string, name: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`${name}: ${(err as Error).message}`);
  }
}

/** An ISO 8601 time, or a duration meaning that long before `now`. */
function parseTime(text: string, now: Date, name: string): Date {
  if (/^\d+(\.\d+)?(ms|s|m|h|d|w)/.test(text)) return new Date(now.getTime() - durationArg(text, name));
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw new UsageError(`${name}: ${JSON.stringify(text)} is neither an ISO 8601 time nor a duration ago`);
  }
  return new Date(ms);
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  if (s < 7200) return `${Math.round(s / 6) / 10} min`;
  if (s < 172_800) return `${Math.round(s / 360) / 10} h`;
  return `${Math.round(s / 8640) / 10} d`;
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
