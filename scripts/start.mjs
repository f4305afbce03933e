// `pnpm start` / `scripts/run.sh start`: migrate, then run the API and the relay as child processes
// until SIGINT/SIGTERM, which is forwarded to each. Needs a build (`pnpm build`). Beside them, the
// inventory service (apps/inventory) and its own relay: its database (`inventory` on the same server
// unless INVENTORY_DATABASE_URL or INVENTORY_DB_* say otherwise) migrated the same way first.
// Configuration comes from the environment; the defaults reach PostgreSQL on 127.0.0.1:5432 and NATS
// on 127.0.0.1:4222. When nothing answers on a configured local port, a throwaway server is started
// there under the project's data directory (ORDERS_DATA_DIR, default .data/) and stopped on exit.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { answers, isLocalHost, startThrowawayNats, startThrowawayPostgres } from './local-services.mjs';

const INVENTORY_DB_VARS = [
  'INVENTORY_DATABASE_URL',
  'INVENTORY_DB_HOST',
  'INVENTORY_DB_PORT',
  'INVENTORY_POSTGRES_USER',
  'INVENTORY_POSTGRES_PASSWORD',
];

/**
 * The inventory's database URL: its own variables when any is set (read by the same config loader the
 * service uses), else database `inventory` (INVENTORY_POSTGRES_DB) on the orders database's server.
 */
async function inventoryDatabaseUrl(env) {
  const { loadInventoryMigrateConfig, loadMigrateConfig } = await import('../packages/config/dist/index.js');
  if (INVENTORY_DB_VARS.some((v) => env[v])) return loadInventoryMigrateConfig(env).database.url;
  const u = new URL(loadMigrateConfig(env).database.url);
  u.pathname = `/${encodeURIComponent(env.INVENTORY_POSTGRES_DB || 'inventory')}`;
  return u.toString();
}

const root = fileURLToPath(new URL('..', import.meta.url));
const dataDir = path.resolve(root, process.env.ORDERS_DATA_DIR || '.data');
const say = (line) => console.error(`start: ${line}`);

/** Where the services will look for PostgreSQL and NATS, from the same variables they read. */
function targets(env) {
  let pg;
  if (env.DATABASE_URL) {
    const u = new URL(env.DATABASE_URL);
    pg = { host: u.hostname, port: Number(u.port || 5432) };
  } else {
    pg = { host: env.DB_HOST || '127.0.0.1', port: Number(env.DB_PORT || 5432) };
  }
  const first = (env.NATS_URL || 'nats://127.0.0.1:4222').split(',')[0].trim();
  const n = new URL(first.includes('://') ? first : `nats://${first}`);
  return { pg, nats: { host: n.hostname, port: Number(n.port || 4222) } };
}

const throwaway = [];
async function stopThrowaway() {
  for (const server of throwaway.splice(0).reverse()) {
    try {
      await server.stop();
    } catch (err) {
      say(`could not stop a throwaway server: ${err.message}`);
    }
  }
}

try {
  const { pg, nats } = targets(process.env);
  if (!(await answers(pg.host, pg.port)) && isLocalHost(pg.host)) {
    const dir = path.join(dataDir, 'postgres');
    say(
      `nothing answers on ${pg.host}:${pg.port}: starting a throwaway PostgreSQL there (data in ${dir}), stopped on exit`,
    );
    throwaway.push(await startThrowawayPostgres({ dataDir: dir, port: pg.port }));
  }
  if (!(await answers(nats.host, nats.port)) && isLocalHost(nats.host)) {
    const dir = path.join(dataDir, 'nats');
    say(
      `nothing answers on ${nats.host}:${nats.port}: starting a throwaway nats-server with JetStream there (store in ${dir}), stopped on exit`,
    );
    throwaway.push(await startThrowawayNats({ dataDir: dir, host: '127.0.0.1', port: nats.port }));
  }
} catch (err) {
  say(err.message);
  await stopThrowaway();
  process.exit(1);
}
let inventoryUrl;
try {
  inventoryUrl = await inventoryDatabaseUrl(process.env);
} catch (err) {
  say(err.message);
  await stopThrowaway();
  process.exit(2);
}
const inventoryEnv = {
  ...process.env,
  INVENTORY_DATABASE_URL: inventoryUrl,
  SERVICE_NAME: 'inventory-service',
};
// The same relay, pointed at the inventory's database and its stream.
const inventoryRelayEnv = {
  ...process.env,
  DATABASE_URL: inventoryUrl,
  NATS_STREAM: process.env.INVENTORY_STREAM || 'inventory',
  RELAY_PORT: process.env.INVENTORY_RELAY_PORT || '8004',
  SERVICE_NAME: 'inventory-service',
};
const services = [
  { name: 'api', entry: 'apps/api/dist/main.js' },
  { name: 'relay', entry: 'apps/relay/dist/main.js' },
  { name: 'inventory', entry: 'apps/inventory/dist/main.js', env: inventoryEnv },
  { name: 'inventory-relay', entry: 'apps/relay/dist/main.js', env: inventoryRelayEnv },
].filter((s) => existsSync(new URL(`../${s.entry}`, import.meta.url)));

function run(entry, env = process.env) {
  return spawn(process.execPath, [entry], { cwd: root, stdio: 'inherit', env });
}

const migrations = [
  { entry: 'packages/db/dist/cli.js', vars: 'DATABASE_URL / DB_*' },
  {
    entry: 'apps/inventory/dist/migrate.js',
    env: inventoryEnv,
    vars: 'INVENTORY_DATABASE_URL / INVENTORY_DB_*',
  },
];
for (const m of migrations) {
  const migrate = run(m.entry, m.env);
  const migrated = await new Promise((resolve) => migrate.once('exit', (code) => resolve(code)));
  if (migrated !== 0) {
    say(
      `migrations failed (exit ${migrated}); is PostgreSQL reachable with the configured ${m.vars} variables?`,
    );
    await stopThrowaway();
    process.exit(1);
  }
}

const children = services.map((s) => ({ ...s, child: run(s.entry, s.env) }));
let stopping = false;
function stopAll(signal) {
  if (stopping) return;
  stopping = true;
  for (const { child } of children) if (child.exitCode === null) child.kill(signal);
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll(signal));

const codes = await Promise.all(
  children.map(
    ({ name, child }) =>
      new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          // One service dying on its own takes the others down: half a service is worse than none.
          if (!stopping) {
            say(`${name} exited (${signal ?? code}); stopping the rest`);
            stopAll('SIGTERM');
          }
          resolve(code ?? 1);
        }),
      ),
  ),
);
await stopThrowaway();
process.exitCode = codes.every((c) => c === 0) ? 0 : 1;
