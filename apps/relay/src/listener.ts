import { RELAY_PRESENCE_LOCK } from '@orders/db';
import { Backoff, sleep } from '@orders/lifecycle';
import type { Logger } from '@orders/logger';
import pg from 'pg';

/** The channel the outbox trigger notifies on. */
export const OUTBOX_CHANNEL = 'outbox';

/**
 * The relay's own session, on a dedicated connection: it holds the relay's presence lock (a session
 * advisory lock on RELAY_PRESENCE_LOCK and the relay id, which tells other relays that this one's
 * partitions are held by a live relay) and, unless `listen` is false, LISTENs and calls `onNotify` for
 * each notification.
 * When the connection drops it reconnects with backoff; meanwhile the relay's poll interval bounds the
 * delay, and other relays may take this one's partitions (a re-publish, recognised by Nats-Msg-Id).
 */
export class OutboxListener {
  #client: pg.Client | undefined;
  #stopped = new AbortController();
  #running: Promise<void> | undefined;
  readonly #log: Logger;

  constructor(
    private readonly options: {
      readonly url: string;
      readonly connectTimeoutMs: number;
      readonly backoffMaxMs: number;
      readonly logger: Logger;
      /** Held for as long as the session lives; see RELAY_PRESENCE_LOCK. */
      readonly relayId: string;
      /** LISTEN for outbox notifications (RELAY_LISTEN); the presence lock is held either way. */
      readonly listen?: boolean;
      readonly onNotify: () => void;
      /** Called after every (re)connect: notifications sent while we were away are lost, so look now. */
      readonly onListening?: () => void;
    },
  ) {
    this.#log = options.logger.child({ component: 'listener' });
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  async #loop(): Promise<void> {
    const backoff = new Backoff(250, this.options.backoffMaxMs);
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      const client = new pg.Client({
        connectionString: this.options.url,
        connectionTimeoutMillis: this.options.connectTimeoutMs,
        keepAlive: true,
        application_name: 'orders-relay-listen',
      });
      const ended = new Promise<unknown>((resolve) => {
        // `on`, not `once`: a dying connection can emit 'error' more than once, and an 'error' with
        // no listener left ends the process.
        client.on('error', resolve);
        client.once('end', () => resolve(undefined));
      });
      try {
        await client.connect();
        const { rows } = await client.query<{ held: boolean }>(
          'SELECT pg_try_advisory_lock($1, hashtext($2)) AS held',
          [RELAY_PRESENCE_LOCK, this.options.relayId],
        );
        if (!rows[0]?.held) {
          // Another session holds the same key (a hash collision of two relay ids): this relay's
          // partitions then count as held while that session lives, and go when their lease ends. Safe.
          this.#log.warn(
            "presence lock held by another session; this relay's partitions go to others only when their lease ends",
          );
        }
        if (this.options.listen !== false) {
          client.on('notification', () => this.options.onNotify());
          await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
        }
        this.#client = client;
        backoff.reset();
        this.#log.info(
          { listen: this.options.listen !== false },
          this.options.listen !== false ? 'listening for outbox notifications' : 'relay session open',
        );
        this.options.onListening?.();
        // The signal outlives every connection: its listener goes when this connection does, or
        // each reconnect would leave one behind.
        const stopped = Promise.withResolvers<void>();
        const onAbort = () => stopped.resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        let err: unknown;
        try {
          err = await Promise.race([ended, stopped.promise]);
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        if (signal.aborted) break;
        this.#log.warn({ err }, 'listen connection lost; the poll interval covers the gap');
      } catch (err) {
        if (signal.aborted) break;
        this.#log.warn({ err, attempt: backoff.attempts + 1 }, 'could not listen for notifications');
      } finally {
        this.#client = undefined;
        await client.end().catch(() => {});
      }
      await sleep(backoff.next(), signal);
    }
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#client?.end().catch(() => {});
    await this.#running;
  }
}
