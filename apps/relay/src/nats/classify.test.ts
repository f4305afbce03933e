import { ErrorCode, NatsError } from 'nats';
import { describe, expect, it } from 'vitest';
import {
  JetStreamRefusedError,
  NoRespondersError,
  PubAckInboxError,
  PubAckTimeoutError,
} from '../pub-acks.js';
import { ASK_WHICH_STREAM, classifyNoResponders, classifyPublishError } from './classify.js';
import { RowPublishError, TransientPublishError } from './errors.js';

const message = { subject: 'orders.order_created', payloadBytes: 2_000_000, maxPayload: 1_048_576 };
const kind = (verdict: unknown) =>
  verdict instanceof RowPublishError
    ? 'row'
    : verdict instanceof TransientPublishError
      ? 'transient'
      : verdict;

describe('classifyPublishError: whose fault a failed publish is', () => {
  it('blames the row for what the same bytes would hit again', () => {
    const tooBig = classifyPublishError(new NatsError('x', ErrorCode.MaxPayloadExceeded), message);
    expect(kind(tooBig)).toBe('row');
    expect((tooBig as Error).message).toBe(
      "payload of 2000000 bytes exceeds the server's max_payload (1048576)",
    );
    for (const code of [ErrorCode.BadHeader, ErrorCode.BadSubject, ErrorCode.BadPayload]) {
      expect(kind(classifyPublishError(new NatsError('bad', code), message))).toBe('row');
    }
    const refused = new JetStreamRefusedError(400, 10054, 'message size exceeds maximum allowed');
    expect(kind(classifyPublishError(refused, message))).toBe('row');
  });

  it('blames NATS for outages, unknown outcomes and server-side errors', () => {
    expect(kind(classifyPublishError(new PubAckTimeoutError('no ack in 5000 ms'), message))).toBe(
      'transient',
    );
    expect(kind(classifyPublishError(new PubAckInboxError('permissions violation'), message))).toBe(
      'transient',
    );
    expect(
      kind(classifyPublishError(new JetStreamRefusedError(503, undefined, 'unavailable'), message)),
    ).toBe('transient');
    expect(kind(classifyPublishError(new NatsError('closed', ErrorCode.ConnectionClosed), message))).toBe(
      'transient',
    );
    expect(kind(classifyPublishError(new Error('socket hang up'), message))).toBe('transient');
  });

  it('passes a verdict already made through unchanged', () => {
    const row = new RowPublishError('invalid subject');
    expect(classifyPublishError(row, message)).toBe(row);
  });

  it('asks the server when nobody answered', () => {
    expect(classifyPublishError(new NoRespondersError('no responders'), message)).toBe(ASK_WHICH_STREAM);
    expect(classifyPublishError(new NatsError('503', ErrorCode.NoResponders), message)).toBe(
      ASK_WHICH_STREAM,
    );
  });
});

describe('classifyNoResponders: what the stream lookup says', () => {
  const cause = new NoRespondersError('no responders');
  it('is transient when a stream captures the subject (JetStream was not ready)', () => {
    expect(kind(classifyNoResponders(undefined, 'orders.x', 'orders', cause))).toBe('transient');
  });
  it('is transient when the lookup itself failed for another reason', () => {
    expect(kind(classifyNoResponders(new Error('timeout'), 'orders.x', 'orders', cause))).toBe('transient');
  });
  it("is the row's fault when no stream captures a foreign subject", () => {
    const verdict = classifyNoResponders(
      new Error('no stream matches subject'),
      'billing.x',
      'orders',
      cause,
    );
    expect(kind(verdict)).toBe('row');
    expect((verdict as Error).message).toBe('no stream captures subject billing.x');
  });
  it('names a missing own stream, which the link recreates', () => {
    expect(classifyNoResponders(new Error('no stream matches subject'), 'orders.x', 'orders', cause)).toBe(
      'own stream missing',
    );
  });
});
