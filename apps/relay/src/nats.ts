import type { Logger } from '@orders/logger';
import {
  type ConnectionOptions,
  connect,
  DeliverPolicy,
  ErrorCode,
  type JetStreamManager,
  type NatsConnection,
  NatsError,
  nanos,
  headers as natsHeaders,
  nkeyAuthenticator,
  StorageType,
} from 'nats';
import { Backoff, sleep } from './backoff.js';
import {
  JetStreamRefusedError,
  NoRespondersError,
  PubAckInbox,
  PubAckInboxError,
  PubAckTimeoutError,
  type PublishAck,
} from './pub-acks.js';

export interface NatsLinkOptions {
  readonly url: string;
  readonly stream: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly nkeySeed?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  /** Replicas when the stream is created (default 1). */
  readonly replicas?: number;
  readonly duplicateWindowMs: number;
  readonly publishTimeoutMs: number;
  readonly backoffMaxMs: number;
  readonly name: string;
  readonly logger: Logger;
  /** Called whenever readiness changes (connected and stream ensured). */
  readonly onReadyChange?: (ready: boolean) => void;
}

/** A publish that failed because of the row itself: retrying the same bytes will fail again. */
export class RowPublishError extends Error {
  override name = 'RowPublishError';
}

/** A publish that failed because NATS could not take it now: retry later, do not blame the row. */
export class TransientPublishError extends Error {
  override name = 'TransientPublishError';
}

export interface OutgoingMessage {
  readonly id: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** How the relay (and its CLI) connect: every server of a comma-separated NATS_URL, auth when given, reconnecting for ever. */
export function natsConnectionOptions(o: {
  readonly url: string;
  readonly name: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly nkeySeed?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
}): ConnectionOptions {
  return {
    servers: o.url.split(',').map((s) => s.trim()),
    name: o.name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 250,
    timeout: 2000,
    pingInterval: 10_000,
    maxPingOut: 2,
    // Otherwise every request (each publish) captures a stack trace up front for a possible timeout:
    // a fifth of the relay's CPU while draining, measured with --cpu-prof.
    noAsyncTraces: true,
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.password !== undefined ? { pass: o.password } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(o.nkeySeed !== undefined
      ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(o.nkeySeed)) }
      : {}),
    ...(o.tls !== undefined ? { tls: { ...o.tls } } : {}),
  };
}

// A subject is dot-separated tokens, none empty, no whitespace, no wildcards. Whitespace is worse
// than invalid: the protocol would read "a.b c" as subject "a.b" with reply-to "c" and store it.
const VALID_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

/**
 * The relay's connection to NATS JetStream: connects (and keeps reconnecting) in the background,
 * ensures the stream after every (re)connect, and reports readiness. Never throws on an outage; a
 * publish while disconnected fails fast as transient.
 */
export class NatsLink {
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
        void this.#ensureStreamUntilDone(this.#stopped.signal);
      }
    }
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

  /**
   * Creates the stream when it does not exist (subjects `<stream>.>`, file storage, the configured
   * duplicate window). An existing stream's configuration is never changed; a duplicate window
   * shorter than configured is reported, because it shortens the time within which a re-publish
   * is recognised as a duplicate.
   */
  async ensureStream(): Promise<void> {
    const jsm = this.#jsm;
    if (!jsm) throw new TransientPublishError('not connected');
    const name = this.options.stream;
    try {
      const info = await jsm.streams.info(name);
      const windowMs = Math.round((info.config.duplicate_window ?? 0) / 1e6);
      this.#streamWindowMs = windowMs;
      if (windowMs < this.options.duplicateWindowMs) {
        this.#log.warn(
          { stream: name, duplicateWindowMs: windowMs, wantedMs: this.options.duplicateWindowMs },
          'stream duplicate window is shorter than RELAY_DUPLICATE_WINDOW_MS: a re-publish later than that after the first one would not be recognised as a duplicate',
        );
      }
    } catch (err) {
      if (!(err instanceof NatsError && err.api_error?.err_code === 10059)) throw err;
      await jsm.streams.add({
        name,
        subjects: [`${name}.>`],
        storage: StorageType.File,
        duplicate_window: nanos(this.options.duplicateWindowMs),
        num_replicas: this.options.replicas ?? 1,
      });
      this.#streamWindowMs = this.options.duplicateWindowMs;
      this.#log.info(
        {
          stream: name,
          duplicateWindowMs: this.options.duplicateWindowMs,
          replicas: this.options.replicas ?? 1,
        },
        'stream created',
      );
    }
  }

  /** The stream's duplicate window as last read from the server (undefined before the first ensure). */
  get streamDuplicateWindowMs(): number | undefined {
    return this.#streamWindowMs;
  }

  /**
   * Which of `ids` are in the stream already, among messages on `subject` stored at or after `since`.
   * Reads headers only, with an ordered consumer starting at that time, to the end of the stream. Used
   * for rows whose earlier publish may be older than the duplicate window, where a re-publish would no
   * longer be recognised. Throws {@link TransientPublishError} when NATS cannot answer.
   */
  async findInStream(subject: string, since: Date, ids: ReadonlySet<string>): Promise<Set<string>> {
    const nc = this.#nc;
    const jsm = this.#jsm;
    if (!nc || !jsm || !this.#ready) throw new TransientPublishError('nats is not connected');
    const found = new Set<string>();
    try {
      const info = await jsm.streams.info(this.options.stream);
      if (info.state.messages === 0 || new Date(info.state.last_ts) < since) return found;
      const consumer = await nc.jetstream().consumers.get(this.options.stream, {
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

  /** The stream's duplicate window in ms, for reporting. */
  async duplicateWindowMs(): Promise<number | undefined> {
    const info = await this.#jsm?.streams.info(this.options.stream);
    return info ? Math.round((info.config.duplicate_window ?? 0) / 1e6) : undefined;
  }

  /**
   * Publishes one message with `Nats-Msg-Id` = its id and resolves with the PubAck (a duplicate
   * ack included: the message is in the stream either way). Rejects with {@link RowPublishError} or
   * {@link TransientPublishError}.
   */
  async publish(message: OutgoingMessage): Promise<PublishAck> {
    const acks = this.#acks;
    if (!acks || !this.#ready) throw new TransientPublishError('nats is not connected');
    if (!VALID_SUBJECT.test(message.subject)) {
      throw new RowPublishError(`invalid subject ${JSON.stringify(message.subject)}`);
    }
    const h = natsHeaders();
    try {
      for (const [key, value] of Object.entries(message.headers)) h.set(key, String(value));
    } catch (err) {
      throw new RowPublishError(`invalid header: ${describe(err)}`, { cause: err });
    }
    h.set('Nats-Msg-Id', message.id);
    try {
      return await acks.publish(message.subject, message.payload, h);
    } catch (err) {
      throw await this.#classify(err, message);
    }
  }

  async #classify(err: unknown, message: OutgoingMessage): Promise<Error> {
    if (err instanceof TransientPublishError) return err;
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
          `payload of ${message.payload.byteLength} bytes exceeds the server's max_payload (${this.#nc?.info?.max_payload ?? '?'})`,
          { cause: err },
        );
      case ErrorCode.BadHeader:
      case ErrorCode.BadSubject:
      case ErrorCode.BadPayload:
        return new RowPublishError(describe(err), { cause: err });
      case ErrorCode.NoResponders: {
        // No stream listens on the subject, or JetStream is not ready (a server starting up).
        // Only the first is the row's fault: ask the server which stream captures the subject.
        try {
          await this.#jsm?.streams.find(message.subject);
          return new TransientPublishError('no responders (JetStream not ready?)', { cause: err });
        } catch (findErr) {
          if (/no stream matches subject/i.test(describe(findErr))) {
            if (message.subject.startsWith(`${this.options.stream}.`)) {
              // Our own stream is gone (deleted, or a fresh server): recreate it, retry later.
              void this.#ensureStreamUntilDone(this.#stopped.signal);
              return new TransientPublishError(`stream ${this.options.stream} is missing; recreating it`, {
                cause: err,
              });
            }
            return new RowPublishError(`no stream captures subject ${message.subject}`, { cause: err });
          }
          return new TransientPublishError('no responders', { cause: err });
        }
      }
      default:
        break;
    }
    // Timeouts, disconnects, closed connections, anything else: the outcome is unknown or NATS is
    // unavailable. Retrying is safe because of Nats-Msg-Id.
    return new TransientPublishError(describe(err), { cause: err });
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

function describe(err: unknown): string {
  if (err instanceof NatsError)
    return err.api_error ? `${err.message} (${err.api_error.err_code})` : `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
