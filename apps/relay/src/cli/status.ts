import { type RelayConfig, redactUrl } from '@orders/config';
import { outboxStatus } from '@orders/db';
import { natsConnectionOptions } from '@orders/nats-connection';
import { connect } from 'nats';
import { streamDuplicateWindowMs } from '../nats/duplicate-window.js';
import { formatDuration, out, parse } from './args.js';
import type { CommandContext } from './context.js';

// `relay status`: the outbox (pending, dead, partitions and their holders) and the stream, read
// without creating or changing anything.

export async function status({ config, db }: CommandContext, args: readonly string[]): Promise<number> {
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
      duplicate_window_ms: streamDuplicateWindowMs(info.config),
      stream_messages: info.state.messages,
    };
  } catch (err) {
    return { stream_error: err instanceof Error ? err.message : String(err) };
  } finally {
    await nc?.close().catch(() => {});
  }
}
