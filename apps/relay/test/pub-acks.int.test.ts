import { startNatsServer } from '@orders/testkit';
import { headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AckReceiver,
  JetStreamRefusedError,
  NoRespondersError,
  PubAckInbox,
  PubAckTimeoutError,
  type PublishAck,
} from '../src/pub-acks.js';
import { natsClient, readStream, waitFor } from './helpers.js';

// PubAckInbox against a real nats-server: every answer JetStream can give to a publish.

const nats = await startNatsServer();
let nc: NatsConnection;
const encoder = new TextEncoder();

function withId(id: string) {
  const h = headers();
  h.set('Nats-Msg-Id', id);
  return h;
}

beforeAll(async () => {
  nc = await natsClient(nats);
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: 'acks', subjects: ['acks.>'] });
  await jsm.streams.add({ name: 'tiny', subjects: ['tiny.>'], max_msg_size: 64 });
});
afterAll(async () => {
  await nc.close();
  await nats.dispose();
});

describe('PubAckInbox', () => {
  it('settles each of many pipelined publishes with its own PubAck; a repeated Nats-Msg-Id is a duplicate', async () => {
    const inbox = new PubAckInbox(nc, 5000);
    try {
      const ids = Array.from({ length: 2000 }, (_, i) => `m-${i}`);
      const acks = await Promise.all(
        ids.map((id) => inbox.publish('acks.created', encoder.encode(`{"id":"${id}"}`), withId(id))),
      );
      expect(acks.every((a) => a.stream === 'acks' && !a.duplicate)).toBe(true);
      expect(new Set(acks.map((a) => a.seq)).size).toBe(2000);
      const again = await inbox.publish('acks.created', encoder.encode('{"id":"m-7"}'), withId('m-7'));
      expect(again).toMatchObject({ stream: 'acks', duplicate: true, seq: acks[7]?.seq });
      // Each message carries the id it was sent with, once.
      const stored = await readStream(nc, 'acks');
      expect(stored.map((m) => m.msgId)).toEqual(ids);
      expect(inbox.waiting).toBe(0);
    } finally {
      inbox.close(new Error('done'));
    }
  });

  it('send: one receiver gets each index once, PubAcks and failures of one batch alike', async () => {
    await (await nc.jetstreamManager()).streams.add({ name: 'batch', subjects: ['batch.>'] });
    const inbox = new PubAckInbox(nc, 5000);
    try {
      const outcomes = new Map<number, PublishAck | Error>();
      let repeated = 0;
      const receiver: AckReceiver = {
        settled(index, outcome) {
          if (outcomes.has(index)) repeated++;
          outcomes.set(index, outcome);
        },
      };
      // Indexes 0-98 to the stream, 99 to a subject nothing captures.
      for (let i = 0; i < 100; i++) {
        const subject = i === 99 ? 'nowhere.created' : 'batch.created';
        inbox.send(subject, encoder.encode(`{"i":${i}}`), withId(`b-${i}`), receiver, i);
      }
      await waitFor('every outcome', async () => outcomes.size === 100, 10_000, 10);
      expect(repeated).toBe(0);
      expect(outcomes.get(99)).toBeInstanceOf(NoRespondersError);
      const acks = [...outcomes].filter(([i]) => i < 99).map(([, a]) => a as PublishAck);
      expect(acks.every((a) => a.stream === 'batch' && !a.duplicate)).toBe(true);
      expect(new Set(acks.map((a) => a.seq)).size).toBe(99);
      expect(inbox.waiting).toBe(0);
    } finally {
      inbox.close(new Error('done'));
    }
  });

  it('rejects with NoRespondersError when no stream captures the subject', async () => {
    const inbox = new PubAckInbox(nc, 5000);
    try {
      await expect(inbox.publish('nowhere.created', encoder.encode('{}'), withId('x'))).rejects.toThrow(
        NoRespondersError,
      );
    } finally {
      inbox.close(new Error('done'));
    }
  });

  it("rejects with JetStream's own error when the stream refuses the message", async () => {
    const inbox = new PubAckInbox(nc, 5000);
    try {
      const refused = inbox.publish('tiny.created', encoder.encode('z'.repeat(200)), withId('big'));
      await expect(refused).rejects.toThrow(JetStreamRefusedError);
      await expect(refused).rejects.toMatchObject({ code: 400, message: /message size exceeds maximum/ });
    } finally {
      inbox.close(new Error('done'));
    }
  });

  it('times out a publish nobody acknowledges, and ignores an ack that comes after', async () => {
    // A plain subscriber takes the subject and never answers: no PubAck, no 503 either.
    const silent = nc.subscribe('silent.created');
    const inbox = new PubAckInbox(nc, 300);
    try {
      const started = performance.now();
      await expect(inbox.publish('silent.created', encoder.encode('{}'), withId('s'))).rejects.toThrow(
        PubAckTimeoutError,
      );
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(300);
      expect(waited).toBeLessThan(2000);
      expect(inbox.waiting).toBe(0);
      // The late answer finds nothing waiting for it.
      for await (const m of silent) {
        m.respond(encoder.encode('{"stream":"acks","seq":1}'));
        break;
      }
      await nc.flush();
      expect(inbox.waiting).toBe(0);
    } finally {
      silent.unsubscribe();
      inbox.close(new Error('done'));
    }
  });

  it('close() fails every publish still waiting', async () => {
    const silent = nc.subscribe('silent2.created');
    const inbox = new PubAckInbox(nc, 60_000);
    const waiting = inbox.publish('silent2.created', encoder.encode('{}'), withId('w'));
    inbox.close(new Error('connection closed'));
    await expect(waiting).rejects.toThrow('connection closed');
    expect(inbox.waiting).toBe(0);
    silent.unsubscribe();
  });
});
