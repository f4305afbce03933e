import { DeliverPolicy, type JetStreamManager, type NatsConnection } from 'nats';
import { describe, TransientPublishError } from './errors.js';

/**
 * Which of `ids` are in `stream` already, among messages on `subject` stored at or after `since`.
 * Reads headers only, with an ordered consumer starting at that time, to the end of the stream. Used
 * for rows whose earlier publish may be older than the duplicate window, where a re-publish would no
 * longer be recognised. Throws {@link TransientPublishError} when NATS cannot answer.
 */
export async function findInStream(
  nc: NatsConnection,
  jsm: JetStreamManager,
  stream: string,
  query: { readonly subject: string; readonly since: Date; readonly ids: ReadonlySet<string> },
): Promise<Set<string>> {
  const { subject, since, ids } = query;
  const found = new Set<string>();
  try {
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0 || new Date(info.state.last_ts) < since) return found;
    const consumer = await nc.jetstream().consumers.get(stream, {
      filterSubjects: subject,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: since.toISOString(),
      headers_only: true,
    });
    const lastSeq = info.state.last_seq;
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
      let seen = 0;
      let done = false;
      for await (const m of batch) {
        seen++;
        const id = m.headers?.get('Nats-Msg-Id');
        if (id && ids.has(id)) found.add(id);
        if (m.info.pending === 0 || m.seq >= lastSeq || found.size === ids.size) done = true;
      }
      if (done || seen === 0) return found;
    }
  } catch (err) {
    throw new TransientPublishError(`could not look up messages in the stream: ${describe(err)}`, {
      cause: err,
    });
  }
}
