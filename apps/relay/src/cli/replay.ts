import { redactUrl } from '@orders/config';
import { countReplay, findUnfinishedReplay, type ReplayCheckpoint, startReplay } from '@orders/db';
import { NatsLink } from '../nats/link.js';
import { formatDuration, out, parse, parseTime, UsageError } from './args.js';
import type { CommandContext } from './context.js';
import { runReplayLoop } from './replay-loop.js';

// `relay replay --since <time> ...`: stored events published again, oldest first, for a stream that
// lost data; resumable from its checkpoint. This file reads the options, says what will happen and
// reports; replay-loop.ts sends.

/** Retries of one chunk that NATS did not take (transient failures), before the replay stops. */
export const REPLAY_RETRIES = 10;

export async function replay(
  { config, db, logger }: CommandContext,
  args: readonly string[],
): Promise<number> {
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

    const outcome = await runReplayLoop({
      db,
      publisher: nats,
      job,
      retries,
      backoffMaxMs: config.backoffMaxMs,
      signal: stop.signal,
      say,
    });
    const { sent, stored, duplicates, failedCount, failed, gaveUp, finished } = outcome;
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
