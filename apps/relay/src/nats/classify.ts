import { ErrorCode, NatsError } from 'nats';
import {
  JetStreamRefusedError,
  NoRespondersError,
  PubAckInboxError,
  PubAckTimeoutError,
} from '../pub-acks.js';
import { describe, RowPublishError, TransientPublishError } from './errors.js';

// Why was this row called dead? Every answer is here: a publish error is the row's fault
// (RowPublishError: the same bytes would fail again, so the row counts an attempt and dies after
// RELAY_MAX_ATTEMPTS) or NATS's (TransientPublishError: retried without blaming the row). Pure
// functions, so each case is a unit test (classify.test.ts).

/** The one case that needs the server's word: nobody answered the publish. */
export const ASK_WHICH_STREAM = Symbol('no responders: ask which stream captures the subject');

export type PublishVerdict = RowPublishError | TransientPublishError | typeof ASK_WHICH_STREAM;

/** What is known about the message that failed, for the verdict and its message. */
export interface FailedPublish {
  readonly subject: string;
  readonly payloadBytes: number;
  /** The server's max_payload, when connected. */
  readonly maxPayload?: number | undefined;
}

/** Classifies an error of one publish. */
export function classifyPublishError(err: unknown, message: FailedPublish): PublishVerdict {
  if (err instanceof RowPublishError || err instanceof TransientPublishError) return err;
  if (err instanceof PubAckTimeoutError || err instanceof PubAckInboxError)
    return new TransientPublishError(err.message, { cause: err });
  // A JetStream error on the publish (the server refused this message) is about the message.
  if (err instanceof JetStreamRefusedError) {
    return err.code >= 400 && err.code < 500
      ? new RowPublishError(`jetstream refused the message: ${err.message}`, { cause: err })
      : new TransientPublishError(`jetstream: ${err.message}`, { cause: err });
  }
  const code =
    err instanceof NoRespondersError
      ? ErrorCode.NoResponders
      : err instanceof NatsError
        ? err.code
        : undefined;
  switch (code) {
    case ErrorCode.MaxPayloadExceeded:
      return new RowPublishError(
        `payload of ${message.payloadBytes} bytes exceeds the server's max_payload (${message.maxPayload ?? '?'})`,
        { cause: err },
      );
    case ErrorCode.BadHeader:
    case ErrorCode.BadSubject:
    case ErrorCode.BadPayload:
      return new RowPublishError(describe(err), { cause: err });
    case ErrorCode.NoResponders:
      // No stream listens on the subject, or JetStream is not ready (a server starting up).
      return ASK_WHICH_STREAM;
    default:
      // Timeouts, disconnects, closed connections, anything else: the outcome is unknown or NATS is
      // unavailable. Retrying is safe because of Nats-Msg-Id.
      return new TransientPublishError(describe(err), { cause: err });
  }
}

/**
 * After a publish nobody answered, what the server said when asked which stream captures the
 * subject (`findError` undefined: a stream does, so JetStream was only not ready). Only a subject
 * no stream captures is the row's fault; a subject of our own stream means the stream is gone
 * (deleted, or a fresh server), and the caller recreates it.
 */
export function classifyNoResponders(
  findError: unknown,
  subject: string,
  ownStream: string,
  cause: unknown,
): RowPublishError | TransientPublishError | 'own stream missing' {
  if (findError === undefined)
    return new TransientPublishError('no responders (JetStream not ready?)', { cause });
  if (!/no stream matches subject/i.test(describe(findError)))
    return new TransientPublishError('no responders', { cause });
  if (subject.startsWith(`${ownStream}.`)) return 'own stream missing';
  return new RowPublishError(`no stream captures subject ${subject}`, { cause });
}
