import { Backoff, sleep } from '@orders/lifecycle';
import type { Logger } from '@orders/logger';
import { type NatsEndpoint, natsConnectionOptions } from '@orders/nats-connection';
import {
  type ConnectionOptions,
  connect,
  type JetStreamManager,
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
} from 'nats';
import { type AckReceiver, PubAckInbox, type PublishAck } from '../pub-acks.js';
import { ASK_WHICH_STREAM, classifyNoResponders, classifyPublishError } from './classify.js';
import { streamDuplicateWindowMs } from './duplicate-window.js';
import { describe, RowPublishError, TransientPublishError } from './errors.js';
import type { OutgoingMessage, Publisher, PublishOutcome } from './publisher.js';
import { ensureStream } from './stream-admin.js';
import { findInStream } from './stream-lookup.js';

export interface NatsLinkOptions extends NatsEndpoint {
  readonly stream: string;
  /** Replicas when the stream is created (default 1). */
  readonly replicas?: number;
  readonly duplicateWindowMs: number;
  readonly publishTimeoutMs: number;
  readonly backoffMaxMs: number;
  readonly logger: Logger;
  /** Called whenever readiness changes (connected and stream ensured). */
  readonly onReadyChange?: (ready: boolean) => void;
}

// A subject is dot-separated tokens, none empty, no whitespace, no wildcards. Whitespace is worse
// than invalid: the protocol would read "a.b c" as subject "a.b" with reply-to "c" and store it.
const VALID_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

/**
 * The relay's connection to NATS JetStream: connects (and keeps reconnecting) in the background,
 * ensures the stream after every (re)connect, and reports readiness. Never throws on an outage; a
 * publish while disconnected fails fast as transient.
 */
export class NatsLink implements Publisher {
  #nc: NatsConnection | undefined;
  #acks: PubAckInbox | undefined;
  #jsm: JetStreamManager | undefined;
  #ready = false;
  #readyWaiters = new Set<() => void>();
  #stopped = new AbortController();
  #running: Promise<void> | undefined;
  readonly #log: Logger;
  /** The stream's own duplicate window, read when the stream was last ensured. */
  #streamWindowMs: number | undefined;
  /** Why the PubAck subscription failed, until a new one is known to work. */
  #inboxError: string | undefined;
  #inboxRetry: NodeJS.Timeout | undefined;
  readonly #inboxBackoff: Backoff;
  #lastValidSubject: string | undefined;
  #recreating: Promise<void> | undefined;

  constructor(private readonly options: NatsLinkOptions) {
    this.#log = options.logger.child({ component: 'nats' });
    this.#inboxBackoff = new Backoff(250, options.backoffMaxMs);
  }

  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Set while the server refuses the subscription PubAcks arrive on (say, no subscribe permission
   * on `_INBOX.>`): publishes fail at once as transient, and a new subscription is tried with backoff.
   */
  get inboxError(): string | undefined {
    return this.#inboxError;
  }

  /** The connection's PubAck inbox; when the server refuses it, reported, retried with backoff. */
  #openInbox(nc: NatsConnection): PubAckInbox {
    const inbox = new PubAckInbox(nc, this.options.publishTimeoutMs, (err) => {
      if (this.#acks !== inbox || this.#stopped.signal.aborted) return;
      const first = this.#inboxError === undefined;
      this.#inboxError = err.message;
      const delay = this.#inboxBackoff.next();
      // Error level once per episode; the retries (one per backoff) at warn.
      this.#log[first ? 'error' : 'warn'](
        { err: describe(err), retryInMs: delay, attempt: this.#inboxBackoff.attempts },
        'PubAck subscription refused: publishes fail until a new one is accepted',
      );
      clearTimeout(this.#inboxRetry);
      this.#inboxRetry = setTimeout(() => void this.#retryInbox(nc, inbox), delay);
      this.#inboxRetry.unref();
    });
    this.#acks = inbox;
    return inbox;
  }

  async #retryInbox(nc: NatsConnection, failed: PubAckInbox): Promise<void> {
    if (this.#acks !== failed || nc.isClosed() || this.#stopped.signal.aborted) return;
    failed.close(new TransientPublishError('PubAck subscription replaced'));
    const inbox = this.#openInbox(nc);
    try {
      // The server answers a refused SUB with an error before the PONG of this flush.
      await nc.flush();
    } catch {
      return; // the connection is in trouble: its own handling takes over
    }
    if (this.#acks === inbox && !inbox.error) {
      this.#inboxError = undefined;
      this.#inboxBackoff.reset();
      this.#log.info('PubAck subscription accepted again');
    }
  }

  /** Starts connecting in the background; resolves at once. */
  start(): void {
    this.#running ??= this.#connectLoop();
  }

  /** Resolves when ready, or when the signal aborts. */
  async waitReady(signal: AbortSignal): Promise<void> {
    if (this.#ready || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#readyWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#readyWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #setReady(ready: boolean): void {
    if (this.#ready === ready) return;
    this.#ready = ready;
    this.options.onReadyChange?.(ready);
    if (ready) for (const w of [...this.#readyWaiters]) w();
  }

  async #connectLoop(): Promise<void> {
    const backoff = new Backoff(250, this.options.backoffMaxMs);
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      try {
        const nc = await connect(this.#connectionOptions());
        this.#nc = nc;
        clearTimeout(this.#inboxRetry);
        this.#inboxError = undefined;
        this.#inboxBackoff.reset();
        this.#openInbox(nc);
        this.#jsm = await nc.jetstreamManager({ timeout: this.options.publishTimeoutMs });
        this.#log.info({ server: nc.getServer() }, 'nats connected');
        backoff.reset();
        void this.#watchStatus(nc);
        await this.#ensureStreamUntilDone(signal);
        // The client reconnects by itself from here on; we only come back if it gives up (closed).
        const err = await nc.closed();
        this.#setReady(false);
        this.#acks?.close(new TransientPublishError('nats connection closed'));
        if (signal.aborted) return;
        this.#log.warn({ err }, 'nats connection closed; connecting again');
      } catch (err) {
        this.#setReady(false);
        // Connected, then failed (e.g. no JetStream answer): close this connection before making the
        // next one, or it would go on reconnecting in the background.
        this.#acks?.close(new TransientPublishError('nats connection abandoned'));
        this.#acks = undefined;
        if (this.#nc && !this.#nc.isClosed()) await this.#nc.close().catch(() => {});
        if (signal.aborted) return;
        const delay = backoff.next();
        this.#log.warn(
          { err: describe(err), retryInMs: delay, attempt: backoff.attempts },
          'nats unreachable',
        );
        await sleep(delay, signal);
      }
    }
  }

  #connectionOptions(): ConnectionOptions {
    return natsConnectionOptions(this.options);
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.#setReady(false);
        this.#log.warn({ server: status.data }, 'nats disconnected');
      } else if (status.type === 'reconnect') {
        this.#log.info({ server: status.data }, 'nats reconnected');
        // A restarted server may have lost the stream (a fresh store): ensure it before publishing.
        this.#recreateStream();
      }
    }
  }

  /** Ensures the stream in the background; one loop at a time, however many publishes found it missing. */
  #recreateStream(): void {
    this.#recreating ??= this.#ensureStreamUntilDone(this.#stopped.signal).finally(() => {
      this.#recreating = undefined;
    });
  }

  async #ensureStreamUntilDone(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(250, this.options.backoffMaxMs);
    while (!signal.aborted && this.#nc && !this.#nc.isClosed()) {
      try {
        await this.ensureStream();
        this.#setReady(true);
        return;
      } catch (err) {
        const delay = backoff.next();
        this.#log.warn({ err: describe(err), retryInMs: delay }, 'could not ensure the stream');
        await sleep(delay, signal);
      }
    }
  }

  /** Creates the stream when it does not exist (see {@link ensureStream}); remembers its duplicate window. */
  async ensureStream(): Promise<void> {
    const jsm = this.#jsm;
    if (!jsm) throw new TransientPublishError('not connected');
    const { stream: name, duplicateWindowMs, replicas } = this.options;
    this.#streamWindowMs = await ensureStream(jsm, { name, duplicateWindowMs, replicas }, this.#log);
  }

  /** The stream's duplicate window as last read from the server (undefined before the first ensure). */
  get streamDuplicateWindowMs(): number | undefined {
    return this.#streamWindowMs;
  }

  /** Which of `ids` are in the stream on `subject` since `since` (see {@link findInStream}). */
  async findInStream(subject: string, since: Date, ids: ReadonlySet<string>): Promise<Set<string>> {
    const nc = this.#nc;
    const jsm = this.#jsm;
    if (!nc || !jsm || !this.#ready) throw new TransientPublishError('nats is not connected');
    return findInStream(nc, jsm, this.options.stream, { subject, since, ids });
  }

  /** The stream's duplicate window in ms, for reporting. */
  async duplicateWindowMs(): Promise<number | undefined> {
    const info = await this.#jsm?.streams.info(this.options.stream);
    return info ? streamDuplicateWindowMs(info.config) : undefined;
  }

  /**
   * Publishes each message with `Nats-Msg-Id` = its id; resolves with an outcome per message, in
   * order (see {@link Publisher.publishBatch}).
   */
  async publishBatch(messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    const acks = this.#acks;
    if (!acks || !this.#ready) return messages.map(() => new TransientPublishError('nats is not connected'));
    const batch = new BatchOutcomes(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as OutgoingMessage;
      const headers = this.#headers(message);
      if (headers instanceof Error) {
        batch.settled(i, headers);
        continue;
      }
      try {
        acks.send(message.subject, message.payload, headers, batch, i);
      } catch (err) {
        batch.settled(i, err as Error); // refused by the client before sending
      }
    }
    const outcomes = await batch.done;
    // Only failures are classified: the normal path adds nothing per message.
    const failed: number[] = [];
    for (let i = 0; i < outcomes.length; i++) if (outcomes[i] instanceof Error) failed.push(i);
    // A batch refused for want of a stream asks once per subject which stream captures it.
    const lookups = new Map<string, Promise<unknown>>();
    await Promise.all(
      failed.map(async (i) => {
        outcomes[i] = await this.#classify(outcomes[i], messages[i] as OutgoingMessage, lookups);
      }),
    );
    return outcomes as PublishOutcome[];
  }

  /** The message's NATS headers, or why the row cannot be published. */
  #headers(message: OutgoingMessage): MsgHdrs | RowPublishError {
    // Most events of a batch share their subject: it is checked once per run of equal subjects.
    if (message.subject !== this.#lastValidSubject) {
      if (!VALID_SUBJECT.test(message.subject))
        return new RowPublishError(`invalid subject ${JSON.stringify(message.subject)}`);
      this.#lastValidSubject = message.subject;
    }
    const h = natsHeaders();
    try {
      for (const key in message.headers) h.set(key, String(message.headers[key]));
    } catch (err) {
      return new RowPublishError(`invalid header: ${describe(err)}`, { cause: err });
    }
    h.set('Nats-Msg-Id', message.id);
    return h;
  }

  async #classify(
    err: unknown,
    message: OutgoingMessage,
    lookups: Map<string, Promise<unknown>>,
  ): Promise<PublishOutcome> {
    const verdict = classifyPublishError(err, {
      subject: message.subject,
      payloadBytes: message.payload.byteLength,
      maxPayload: this.#nc?.info?.max_payload,
    });
    if (verdict !== ASK_WHICH_STREAM) return verdict;
    let lookup = lookups.get(message.subject);
    if (lookup === undefined) {
      // Resolves with the lookup's error, or undefined when a stream captures the subject.
      lookup = Promise.resolve(this.#jsm?.streams.find(message.subject)).then(
        () => undefined,
        (e: unknown) => e,
      );
      lookups.set(message.subject, lookup);
    }
    const findError = await lookup;
    const answer = classifyNoResponders(findError, message.subject, this.options.stream, err);
    if (answer !== 'own stream missing') return answer;
    // Our own stream is gone (deleted, or a fresh server): recreate it, retry later.
    this.#recreateStream();
    return new TransientPublishError(`stream ${this.options.stream} is missing; recreating it`, {
      cause: err,
    });
  }

  /** Closes the connection, letting in-flight requests finish first (bounded). */
  async stop(): Promise<void> {
    this.#stopped.abort();
    clearTimeout(this.#inboxRetry);
    const nc = this.#nc;
    this.#setReady(false);
    if (nc && !nc.isClosed()) {
      const gaveUp = new AbortController();
      await Promise.race([nc.drain().catch(() => nc.close()), sleep(2000, gaveUp.signal)]);
      gaveUp.abort(); // clears the timer, or it would keep the process alive
      if (!nc.isClosed()) await nc.close();
    }
    await this.#running;
  }
}

/** Collects the outcomes of one batch; `done` resolves once every message has one. */
class BatchOutcomes implements AckReceiver {
  readonly #outcomes: (PublishAck | Error)[];
  readonly done: Promise<(PublishAck | Error)[]>;
  #left: number;
  #resolve!: (outcomes: (PublishAck | Error)[]) => void;

  constructor(size: number) {
    this.#outcomes = new Array(size);
    this.#left = size;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    if (size === 0) this.#resolve(this.#outcomes);
  }

  settled(index: number, outcome: PublishAck | Error): void {
    this.#outcomes[index] = outcome;
    if (--this.#left === 0) this.#resolve(this.#outcomes);
  }
}
