import { type ConnectionOptions, nkeyAuthenticator } from 'nats';

/** Where and as whom to connect (from a process's NATS configuration). */
export interface NatsEndpoint {
  /** One server or a comma-separated list. */
  readonly url: string;
  readonly name: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly nkeySeed?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
}

/**
 * How the relay, its CLI and the inventory's consumer connect: every server of a comma-separated
 * NATS_URL, auth when given, reconnecting for ever.
 */
export function natsConnectionOptions(o: NatsEndpoint): ConnectionOptions {
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
