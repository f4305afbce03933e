import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createTestCertificates, createTestDatabase, startNatsServer } from '@orders/testkit';
import { nkeys } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { startRelay, waitFor } from './helpers.js';

// The relay's NATS security options against real nats-servers: TLS with a private CA, mutual TLS,
// nkey authentication. Secrets (the nkey seed) never appear in its output.

const tdb = await createTestDatabase();
const certs = await createTestCertificates();
afterAll(async () => {
  await certs.dispose();
  await tdb.drop();
});

/** Starts a nats-server with the given options and a relay against it; resolves once the relay is ready. */
async function relayGetsReady(
  env: Record<string, string>,
  natsArgs: string[],
  url?: (port: number) => string,
) {
  const nats = await startNatsServer({ args: natsArgs });
  const relay = await startRelay(tdb.url, url ? { ...nats, url: url(nats.port) } : nats, {
    NATS_STREAM: `sec${Math.random().toString(36).slice(2, 8)}`,
    ...env,
  });
  try {
    await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok, 15_000);
    return relay;
  } finally {
    relay.kill('SIGTERM');
    await relay.exited;
    await nats.dispose();
  }
}

describe('NATS security options', () => {
  it('TLS with a private CA (NATS_TLS_CA_FILE)', async () => {
    const relay = await relayGetsReady(
      { NATS_TLS_CA_FILE: certs.caFile },
      ['--tls', '--tlscert', certs.serverCertFile, '--tlskey', certs.serverKeyFile],
      (port) => `tls://127.0.0.1:${port}`,
    );
    expect(relay.lines.some((l) => l.includes('"msg":"nats connected"'))).toBe(true);
  });

  it('without the CA, an untrusted server certificate keeps the relay not ready (and running), never connected', async () => {
    const nats = await startNatsServer({
      args: ['--tls', '--tlscert', certs.serverCertFile, '--tlskey', certs.serverKeyFile],
    });
    const relay = await startRelay(
      tdb.url,
      { ...nats, url: `tls://127.0.0.1:${nats.port}` },
      { NATS_TLS: 'true' },
    );
    try {
      await relay.waitForLine(/"msg":"nats unreachable"/, 10_000);
      expect((await fetch(`http://127.0.0.1:${relay.port}/ready`)).status).toBe(503);
      expect(relay.alive()).toBe(true);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
      await nats.dispose();
    }
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
      (port) => `tls://127.0.0.1:${port}`,
    );
    // Without the client certificate the handshake fails.
    const nats = await startNatsServer({ args: serverArgs });
    const relay = await startRelay(
      tdb.url,
      { ...nats, url: `tls://127.0.0.1:${nats.port}` },
      { NATS_TLS_CA_FILE: certs.caFile },
    );
    try {
      await relay.waitForLine(/"msg":"nats unreachable"/, 10_000);
      expect((await fetch(`http://127.0.0.1:${relay.port}/ready`)).status).toBe(503);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
      await nats.dispose();
    }
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
    const nats = await startNatsServer({ args: ['-c', conf] });
    const other = new TextDecoder().decode(nkeys.createUser().getSeed());
    const refused = await startRelay(tdb.url, nats, { NATS_NKEY_SEED: other, LOG_LEVEL: 'debug' });
    try {
      await refused.waitForLine(/"msg":"nats unreachable"/, 10_000);
      expect([...refused.lines, ...refused.stderr].join('\n')).not.toContain(other);
    } finally {
      refused.kill('SIGTERM');
      await refused.exited;
      await nats.dispose();
    }
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
