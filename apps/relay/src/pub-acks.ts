import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';

/** What JetStream answered to a publish it stored (or recognised as a duplicate). */
export interface PublishAck {
  readonly stream: string;
  readonly seq: number;
  /** The stream already held a message with this `Nats-Msg-Id`: the event is in the stream once. */
  readonly duplicate: boolean;
}

/** No stream answered: no stream captures the subject, or JetStream is not ready. */
export class NoRespondersError extends Error {
  override name = 'NoRespondersError';
}

/** JetStream answered the publish with an error (the message was not stored). */
export class JetStreamRefusedError extends Error {
  override name = 'JetStreamRefusedError';
  constructor(
    readonly code: number,
    readonly errCode: number | undefined,
    description: string,
  ) {
    super(description);
  }
}

/**
 * The reply subscription failed (the server refused it: no subscribe permission on the inbox, or it
 * removed it on a configuration reload): no PubAck can arrive, so every publish fails with this
 * error at once instead of timing out. A new {@link PubAckInbox} subscribes again.
 */
export class PubAckInboxError extends Error {
  override name = 'PubAckInboxError';
}

/** No PubAck within the publish timeout: the outcome is unknown (stored or not). */
export class PubAckTimeoutError extends Error {
  override name = 'PubAckTimeoutError';
}

/**
 * Receives the outcomes of messages sent with {@link PubAckInbox.send}: each index once, with its
 * PubAck or the error that settled it. One receiver serves a whole batch, so a message costs no
 * promise, closure or timer of its own.
 */
export interface AckReceiver {
  settled(index: number, outcome: PublishAck | Error): void;
}

interface Waiting {
  readonly receiver: AckReceiver;
  readonly index: number;
  readonly deadline: number;
}

/** Adapts one promise to the receiver interface, for {@link PubAckInbox.publish}. */
class OnePromise implements AckReceiver {
  constructor(
    private readonly resolve: (ack: PublishAck) => void,
    private readonly reject: (err: Error) => void,
  ) {}
  settled(_index: number, outcome: PublishAck | Error): void {
    if (outcome instanceof Error) this.reject(outcome);
    else this.resolve(outcome);
  }
}

const decoder = new TextDecoder();

/**
 * JetStream publishes that share one reply subscription, the way the Go and Java clients publish
 * asynchronously: each message goes out with `reply` = `<inbox>.<token>`, and the PubAcks arriving on
 * `<inbox>.*` settle the matching promise. One sweep timer enforces the timeout for all of them.
 *
 * Why not `js.publish()`: nats.js 2.29 makes each one a request with its own timer and mux entry,
 * and on success cancels it by rejecting its already-settled promise with a freshly constructed
 * NatsError, capturing a stack trace per message. With `--cpu-prof` while draining 100,000 rows that
 * constructor alone was 19% of the relay's CPU. The wire protocol is the same: a PUB with a reply
 * subject and the `Nats-Msg-Id` header, a JSON PubAck (or a 503 status when nothing listens) back.
 *
 * One instance per connection: the client re-subscribes after a reconnect, and {@link close} fails
 * whatever is still waiting when the connection is gone for good.
 */
export class PubAckInbox {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<string, Waiting>();
  readonly #sub: Subscription;
  readonly #sweep: NodeJS.Timeout;
  readonly #onError: ((err: PubAckInboxError) => void) | undefined;
  #failed: PubAckInboxError | undefined;
  #next = 0;

  /** `onError` is called once if the reply subscription fails; see {@link PubAckInboxError}. */
  constructor(nc: NatsConnection, timeoutMs: number, onError?: (err: PubAckInboxError) => void) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
    this.#onError = onError;
    this.#prefix = createInbox();
    this.#sub = nc.subscribe(`${this.#prefix}.*`, {
      // The client calls back with an error (and an empty message) when the server refuses the
      // subscription, then closes it.
      callback: (err, msg) => (err ? this.#fail(err) : this.#settle(msg)),
    });
    this.#sweep = setInterval(() => this.#expire(), Math.max(10, Math.min(250, timeoutMs / 4)));
    this.#sweep.unref();
  }

  /** Waiting for their PubAck now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Why the reply subscription failed, if it did: every publish then rejects with this. */
  get error(): PubAckInboxError | undefined {
    return this.#failed;
  }

  /**
   * Sends one message and resolves with its PubAck. Rejects with {@link NoRespondersError},
   * {@link JetStreamRefusedError}, {@link PubAckTimeoutError} or {@link PubAckInboxError} (then
   * without sending); a message the client refuses to send (over max_payload, a bad subject or
   * header) throws the client's NatsError at once.
   */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs): Promise<PublishAck> {
    let receiver: OnePromise | undefined;
    const acked = new Promise<PublishAck>((resolve, reject) => {
      receiver = new OnePromise(resolve, reject);
    });
    this.send(subject, payload, headers, receiver as OnePromise, 0);
    return acked;
  }

  /**
   * Sends one message; `receiver.settled(index, ...)` is called once with its PubAck or one of the
   * errors {@link publish} rejects with (at once, before returning, when the subscription has
   * failed). A message the client refuses to send throws the client's NatsError, and is not settled.
   * What the relay uses: without a promise per message (and the relay's two async wrappers around
   * it) the relay process took 13.9-14.6 instead of 15.6-16.6 µs of CPU per event, draining 100,000
   * rows 62-67k instead of 57-60k events/s (alternating runs, same machine).
   */
  send(subject: string, payload: Uint8Array, headers: MsgHdrs, receiver: AckReceiver, index: number): void {
    if (this.#failed) {
      receiver.settled(index, this.#failed);
      return;
    }
    const token = (this.#next++).toString(36);
    this.#nc.publish(subject, payload, { reply: `${this.#prefix}.${token}`, headers });
    this.#waiting.set(token, { receiver, index, deadline: performance.now() + this.#timeoutMs });
  }

  /** Fails every publish still waiting (the connection is closed) and stops listening. */
  close(reason: Error): void {
    clearInterval(this.#sweep);
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of waiting) w.receiver.settled(w.index, reason);
    if (!this.#sub.isClosed()) this.#sub.unsubscribe();
  }

  #fail(cause: Error): void {
    if (this.#failed) return;
    const err = new PubAckInboxError(`PubAck subscription ${this.#prefix}.* failed: ${cause.message}`, {
      cause,
    });
    this.#failed = err;
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of waiting) w.receiver.settled(w.index, err);
    this.#onError?.(err);
  }

  #settle(msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length + 1);
    const w = this.#waiting.get(token);
    if (!w) return; // timed out already: the row was handed back and will be sent again
    this.#waiting.delete(token);
    if (msg.headers?.code === 503) {
      w.receiver.settled(w.index, new NoRespondersError('no responders'));
      return;
    }
    let ack: {
      stream?: string;
      seq?: number;
      duplicate?: boolean;
      error?: { code?: number; err_code?: number; description?: string };
    };
    try {
      ack = JSON.parse(decoder.decode(msg.data));
    } catch {
      w.receiver.settled(w.index, new JetStreamRefusedError(0, undefined, 'unreadable PubAck'));
      return;
    }
    w.receiver.settled(
      w.index,
      ack.error
        ? new JetStreamRefusedError(ack.error.code ?? 0, ack.error.err_code, ack.error.description ?? 'error')
        : { stream: ack.stream ?? '', seq: ack.seq ?? 0, duplicate: ack.duplicate === true },
    );
  }

  #expire(): void {
    const now = performance.now();
    // Insertion order is deadline order (one timeout for all): stop at the first still in time.
    for (const [token, w] of this.#waiting) {
      if (w.deadline > now) return;
      this.#waiting.delete(token);
      w.receiver.settled(w.index, new PubAckTimeoutError(`no PubAck within ${this.#timeoutMs} ms`));
    }
  }
}
