import type { Logger } from '@orders/logger';
import { type JetStreamManager, NatsError, nanos, StorageType } from 'nats';
import { streamDuplicateWindowMs } from './duplicate-window.js';

export interface StreamSpec {
  readonly name: string;
  readonly duplicateWindowMs: number;
  /** Replicas when the stream is created (default 1). */
  readonly replicas?: number | undefined;
}

// JetStream's "stream not found" API error code.
const STREAM_NOT_FOUND = 10059;

/**
 * Creates the stream when it does not exist (subjects `<stream>.>`, file storage, the configured
 * duplicate window) and returns its duplicate window in ms. An existing stream's configuration is
 * never changed; a duplicate window shorter than configured is reported, because it shortens the
 * time within which a re-publish is recognised as a duplicate.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec, log: Logger): Promise<number> {
  const { name, duplicateWindowMs } = spec;
  try {
    const info = await jsm.streams.info(name);
    const windowMs = streamDuplicateWindowMs(info.config);
    if (windowMs < duplicateWindowMs) {
      log.warn(
        { stream: name, duplicateWindowMs: windowMs, wantedMs: duplicateWindowMs },
        'stream duplicate window is shorter than RELAY_DUPLICATE_WINDOW_MS: a re-publish later than that after the first one would not be recognised as a duplicate',
      );
    }
    return windowMs;
  } catch (err) {
    if (!(err instanceof NatsError && err.api_error?.err_code === STREAM_NOT_FOUND)) throw err;
    const replicas = spec.replicas ?? 1;
    await jsm.streams.add({
      name,
      subjects: [`${name}.>`],
      storage: StorageType.File,
      duplicate_window: nanos(duplicateWindowMs),
      num_replicas: replicas,
    });
    log.info({ stream: name, duplicateWindowMs, replicas }, 'stream created');
    return duplicateWindowMs;
  }
}
