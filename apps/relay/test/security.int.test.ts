import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createTestCertificates,
  createTestDatabase,
  type NatsServer,
  startNatsServer,
} from '@orders/testkit';
import { sql } from 'kysely';
import { nkeys } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { insertBacklog, type RelayProcess, unreadIds, waitFor, withRelay } from './helpers.js';

// The relay's NATS security options against real nats-servers: TLS with a private CA, mutual TLS,
// nkey authentication. Secrets (the nkey seed) never appear in its output.

const tdb = await createTestDatabase();
const certs = await createTestCertificates();
afterAll(async () => {
  await certs.dispose();
  await tdb.drop();
});

/**
 * Starts a nats-server with `natsArgs` and the relay against it (at `url(port)` when given), runs
 * `until` with both, then stops the relay (SIGTERM, waiting for its exit) and the server.
 */
async function withServerAndRelay<T>(
  natsArgs: string[],
  env: Record<string, string>,
  until: (relay: RelayProcess, nats: NatsServer) => Promise<T>,
  url?: (port: number) => string,
): Promise<T> {
  const nats = await startNatsServer({ args: natsArgs });
  try {
    return await withRelay(tdb.url, url ? { ...nats, url: url(nats.port) } : nats, env, (relay) =>
      until(relay, nats),
    );
  } finally {
    await nats.dispose();
  }
}

const tlsUrl = (port: number) => `tls://127.0.0.1:${port}`;

/** A nats-server with the given options and a relay against it; resolves once the relay was ready. */
function relayGetsReady(env: Record<string, string>, natsArgs: string[], url?: (port: number) => string) {
  return withServerAndRelay(
    natsArgs,
    { NATS_STREAM: `sec${Math.random().toString(36).slice(2, 8)}`, ...env },
    async (relay) => {
      await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok, 15_000);
      return relay;
    },
    url,
  );
}

/** Waits for the relay to say NATS is unreachable. */
const unreachable = (relay: RelayProcess) => relay.waitForLine(/"msg":"nats unreachable"/, 10_000);

describe('NATS security options', () => {
  it('TLS with a private CA (NATS_TLS_CA_FILE)', async () => {
    const relay = await relayGetsReady(
      { NATS_TLS_CA_FILE: certs.caFile },
      ['--tls', '--tlscert', certs.serverCertFile, '--tlskey', certs.serverKeyFile],
      tlsUrl,
    );
    expect(relay.lines.some((l) => l.includes('"msg":"nats connected"'))).toBe(true);
  });

  it('without the CA, an untrusted server certificate keeps the relay not ready (and running), never connected', async () => {
    const serverArgs = ['--tls', '--tlscert', certs.serverCertFile, '--tlskey', certs.serverKeyFile];
    await withServerAndRelay(
      serverArgs,
      { NATS_TLS: 'true' },
      async (relay) => {
        await unreachable(relay);
        expect((await fetch(`http://127.0.0.1:${relay.port}/ready`)).status).toBe(503);
        expect(relay.alive()).toBe(true);
      },
      tlsUrl,
    );
  });

  it('mutual TLS: the server requires a client certificate (NATS_TLS_CERT_FILE/KEY_FILE)', async () => {
    const serverArgs = [
      '--tlsverify',
      '--tlscert',
      certs.serverCertFile,
      '--tlskey',
      certs.serverKeyFile,
      '--tlscacert',
      certs.caFile,
    ];
    await relayGetsReady(
      {
        NATS_TLS_CA_FILE: certs.caFile,
        NATS_TLS_CERT_FILE: certs.clientCertFile,
        NATS_TLS_KEY_FILE: certs.clientKeyFile,
      },
      serverArgs,
      tlsUrl,
    );
    // Without the client certificate the handshake fails.
    await withServerAndRelay(
      serverArgs,
      { NATS_TLS_CA_FILE: certs.caFile },
      async (relay) => {
        await unreachable(relay);
        expect((await fetch(`http://127.0.0.1:${relay.port}/ready`)).status).toBe(503);
      },
      tlsUrl,
    );
  });

  it('nkey authentication from a seed file; the seed is never logged', async () => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const conf = path.join(certs.dir, 'nkey.conf');
    await writeFile(conf, `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }\n`);
    const seedFile = path.join(certs.dir, 'relay.nk');
    await writeFile(seedFile, `${seed}\n`, { mode: 0o600 });
    const relay = await relayGetsReady({ NATS_NKEY_SEED_FILE: seedFile, LOG_LEVEL: 'debug' }, ['-c', conf]);
    expect([...relay.lines, ...relay.stderr].join('\n')).not.toContain(seed);
    // A wrong key is refused by the server: not ready, the seed still not logged.
    const other = new TextDecoder().decode(nkeys.createUser().getSeed());
    await withServerAndRelay(['-c', conf], { NATS_NKEY_SEED: other, LOG_LEVEL: 'debug' }, async (refused) => {
      await unreachable(refused);
      expect([...refused.lines, ...refused.stderr].join('\n')).not.toContain(other);
    });
  });

  it('a refused PubAck subscription is logged, makes /ready 503 with the reason, fails publishes as transient, and recovers', async () => {
    // The relay user loses subscribe permission on _INBOX.> while the relay runs: the server removes
    // its subscriptions on the reload (the PubAck inbox among them) and refuses new ones.
    const conf = path.join(certs.dir, 'inbox.conf');
    await writeFile(conf, 'authorization { users = [ { user: relay, password: relay-pw } ] }\n');
    const stream = `inbox${Math.random().toString(36).slice(2, 8)}`;
    const env = {
      NATS_STREAM: stream,
      NATS_USER: 'relay',
      NATS_PASSWORD: 'relay-pw',
      // Long enough that a publish which failed by timing out could not have been retried yet.
      RELAY_PUBLISH_TIMEOUT_MS: '10000',
      RELAY_BACKOFF_MAX_MS: '300',
      RELAY_LEASE_MS: '60000',
    };
    const failuresCounted = async (ids: readonly string[]) =>
      (
        await sql<{
          n: number;
        }>`SELECT count(*)::int AS n FROM outbox_failures WHERE id = ANY(${ids}::uuid[])`.execute(tdb.db)
      ).rows[0]?.n;
    await withServerAndRelay(['-c', conf], env, async (relay, nats) => {
      // A reloaded file must enable JetStream itself: nats-server 2.9 turns it off otherwise (-js alone).
      const users = (relayPermissions: string) =>
        `jetstream { store_dir: "${nats.storeDir}" }\n` +
        `authorization { users = [ { user: relay, password: relay-pw${relayPermissions} } ] }\n`;
      const ready = async () => {
        const res = await fetch(`http://127.0.0.1:${relay.port}/ready`);
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      await waitFor('ready', async () => (await ready()).status === 200, 15_000);
      await writeFile(conf, users(', permissions: { subscribe: { deny: ["_INBOX.>"] } }'));
      await nats.reload();
      const refused = JSON.parse(await relay.waitForLine(/PubAck subscription refused/, 10_000));
      expect(refused).toMatchObject({ level: 'error', err: expect.stringMatching(/Permissions Violation/) });
      expect(await ready()).toMatchObject({
        status: 503,
        body: {
          status: 'not_ready',
          nats: 'pubacks_refused',
          nats_error: expect.stringMatching(/Permissions/),
        },
      });

      // Rows written now fail at once as transient, not after the 10 s PubAck timeout: they are read
      // and tried again within seconds, no attempt counted against them.
      const ids = await insertBacklog(tdb.db, 5, { stream });
      await waitFor(
        'the rows tried again',
        async () => (await relay.metric('outbox_publish_failures_total{kind="transient"}')) >= 15,
        8_000,
        100,
      );
      expect(await unreadIds(tdb.db, ids)).toHaveLength(5);
      expect(await failuresCounted(ids)).toBe(0);
      // The batch's error names the refused subscription.
      expect(relay.lines.some((l) => /PubAck subscription.*"msg":"nats unavailable/.test(l))).toBe(true);

      // The permission is back: a new subscription is accepted, and the rows are published.
      await writeFile(conf, users(''));
      await nats.reload();
      await relay.waitForLine(/PubAck subscription accepted again/, 10_000);
      await waitFor('ready again', async () => (await ready()).status === 200, 10_000);
      await waitFor('the rows published', async () => (await unreadIds(tdb.db, ids)).length === 0, 15_000);
      expect(relay.alive()).toBe(true);
    });
  });

  it('refuses a malformed seed or half a client certificate at start, naming the variable', async () => {
    const { startNodeProcess } = await import('@orders/testkit');
    for (const [env, variable] of [
      [{ NATS_NKEY_SEED: 'not-a-seed' }, 'NATS_NKEY_SEED'],
      [{ NATS_TLS_CERT_FILE: certs.clientCertFile }, 'NATS_TLS_KEY_FILE'],
      [{ NATS_NKEY_SEED_FILE: '/nonexistent/seed' }, 'NATS_NKEY_SEED_FILE'],
    ] as const) {
      const proc = startNodeProcess('apps/relay/dist/main.js', { DATABASE_URL: tdb.url, ...env });
      const { code } = await proc.exited;
      expect(code).toBe(2);
      expect(proc.stderr.join('\n')).toContain(variable);
      expect(proc.stderr.join('\n')).not.toContain('not-a-seed');
    }
  });
});
