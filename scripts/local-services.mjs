// Throwaway PostgreSQL and NATS for `scripts/run.sh start` on a machine that has them installed but
// not running: started under the project's data directory on the configured port, stopped on exit.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** True when something accepts TCP connections on host:port. */
export function answers(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export const isLocalHost = (host) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);

async function waitUntilAnswers(host, port, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await answers(host, port, 500)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start answering on ${host}:${port} within ${timeoutMs} ms`);
}

/** The directory holding initdb and pg_ctl: pg_config's, else the newest Debian cluster's, else PATH. */
function postgresBinDir() {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  } catch {}
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(path.join(debian, v, 'bin/initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(debian, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (which.status === 0) return path.dirname(which.stdout.trim());
  throw new Error(
    'PostgreSQL is not installed (no initdb found): install it, or point DATABASE_URL at a server',
  );
}

/**
 * PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user and its
 * commands run through runuser. Returns [command, args] for a PostgreSQL binary.
 */
function asClusterOwner(bin, args) {
  if (process.getuid?.() !== 0) return [bin, args];
  return ['runuser', ['-u', 'postgres', '--', bin, ...args]];
}

function run(bin, args, what) {
  const [cmd, argv] = asClusterOwner(bin, args);
  const result = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${what} failed (${result.status}): ${(result.stderr || result.stdout || '').trim()}`);
  }
}

/**
 * Initialises (first time) and starts a PostgreSQL cluster in `dataDir` on 127.0.0.1:port, trust auth.
 * `configure(dataDir)` runs after initdb, before the first start (tests use it for TLS and pg_hba);
 * `serverOptions` are extra `-c name=value` settings.
 */
export async function startThrowawayPostgres({ dataDir, port, configure, serverOptions = [] }) {
  const bin = postgresBinDir();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) {
    const owner = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const group = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(dataDir, Number(owner), Number(group));
    const [cmd, argv] = asClusterOwner('test', ['-w', dataDir]);
    if (spawnSync(cmd, argv).status !== 0) {
      throw new Error(
        `the postgres user cannot reach ${dataDir} (a parent directory is private): set ORDERS_DATA_DIR to a directory it can reach`,
      );
    }
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    run(
      path.join(bin, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      'initdb',
    );
    configure?.(dataDir);
  }
  // The socket goes in the data directory: no need for /var/run/postgresql to exist or be writable.
  run(
    path.join(bin, 'pg_ctl'),
    [
      '-D',
      dataDir,
      '-l',
      path.join(dataDir, 'server.log'),
      '-o',
      [`-p ${port} -c listen_addresses=127.0.0.1 -k ${dataDir}`, ...serverOptions.map((o) => `-c ${o}`)].join(
        ' ',
      ),
      '-w',
      '-t',
      '60',
      'start',
    ],
    'pg_ctl start',
  );
  await waitUntilAnswers('127.0.0.1', port, 30_000, 'PostgreSQL');
  return {
    stop() {
      const [cmd, argv] = asClusterOwner(path.join(bin, 'pg_ctl'), ['-D', dataDir, 'status']);
      // A Ctrl-C in the terminal may have reached the server too (a fast shutdown): nothing left to stop.
      if (spawnSync(cmd, argv, { stdio: 'ignore' }).status !== 0) return;
      run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop'], 'pg_ctl stop');
    },
  };
}

/** Starts nats-server with JetStream, its store in `dataDir`, on host:port. */
export async function startThrowawayNats({ dataDir, host, port }) {
  mkdirSync(dataDir, { recursive: true });
  const child = spawn('nats-server', ['-a', host, '-p', String(port), '-js', '-sd', dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches start.mjs, which stops it after the services.
    detached: true,
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  const failed = new Promise((_, reject) => {
    child.once('error', (err) =>
      reject(
        new Error(`nats-server could not start (${err.message}); install it, or point NATS_URL at a server`),
      ),
    );
    child.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${stderr.trim()}`)));
  });
  await Promise.race([waitUntilAnswers(host, port, 15_000, 'nats-server'), failed]);
  failed.catch(() => {});
  return {
    stop() {
      if (child.exitCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
