import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  adminQuery,
  createTestDatabase,
  freePort,
  REPO_ROOT,
  startNatsServer,
  startOtlpReceiver,
} from '@orders/testkit';
import { connect } from 'nats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

// The container setup, proven without a Docker engine:
// - the compose files are validated by a real compose implementation and checked for what scaling needs;
// - each Dockerfile is read, its build stage's script (scripts/image-build.sh) is run into a temp
//   directory standing in for /app, and the result is started with plain `node` exactly as the image's
//   CMD, ENV, WORKDIR and HEALTHCHECK say, against real PostgreSQL and a real nats-server.
// The Dockerfiles are the source of truth: change a CMD or an ENV there and this test runs the new one.

const run = promisify(execFile);

interface Dockerfile {
  readonly args: Record<string, string>;
  /** The runtime (last) stage. */
  readonly runtime: {
    readonly from: string;
    readonly env: Record<string, string>;
    readonly workdir: string;
    readonly user: string | undefined;
    readonly cmd: string[];
    readonly healthcheck: string[];
    readonly copies: string[];
  };
  /** RUN lines of the build stage. */
  readonly buildRuns: string[];
}

/** Reads the instructions this test relies on (continuation lines joined, comments dropped). */
function readDockerfile(name: string): Dockerfile {
  const text = readFileSync(path.join(REPO_ROOT, name), 'utf8');
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: { from: string; lines: string[] }[] = [];
  for (const line of lines) {
    const [instruction = '', ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    if (instruction === 'FROM') stages.push({ from: value, lines: [] });
    else if (instruction === 'ARG') {
      const [k = '', v = ''] = value.split('=');
      args[k] = v;
    } else stages.at(-1)?.lines.push(line);
  }
  const runtime = stages.at(-1);
  const build = stages.find((s) => / AS build$/i.test(s.from));
  if (!runtime || !build) throw new Error(`${name}: expected a build stage and a runtime stage`);
  const env: Record<string, string> = {};
  let workdir = '/';
  let user: string | undefined;
  let cmd: string[] = [];
  let healthcheck: string[] = [];
  const copies: string[] = [];
  for (const line of runtime.lines) {
    const [instruction = '', ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    if (instruction === 'ENV') for (const m of value.matchAll(/(\w+)=(\S+)/g)) env[m[1] ?? ''] = m[2] ?? '';
    else if (instruction === 'WORKDIR') workdir = value;
    else if (instruction === 'USER') user = value;
    else if (instruction === 'CMD') cmd = JSON.parse(value) as string[];
    else if (instruction === 'HEALTHCHECK')
      healthcheck = JSON.parse(value.slice(value.indexOf('CMD ') + 4)) as string[];
    else if (instruction === 'COPY') copies.push(value);
  }
  return {
    args,
    runtime: { from: runtime.from, env, workdir, user, cmd, healthcheck, copies },
    buildRuns: build.lines.filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4)),
  };
}

/** A process started the way the image's CMD starts it: `node <args>` in WORKDIR, with the image ENV plus compose-style settings. */
function startLikeImage(image: Dockerfile, appDir: string, argv: string[], env: Record<string, string>) {
  const [program, ...args] = argv;
  expect(program).toBe('node');
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: appDir,
    // Only what the image and compose provide: no PATH tricks, no workspace.
    env: { ...mapAppPaths(image.runtime.env, image.runtime.workdir, appDir), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<{ code: number | null; signal: string | null; ms: number }>((resolve) => {
    let signalledAt = 0;
    const kill = child.kill.bind(child);
    child.kill = (signal) => {
      signalledAt = performance.now();
      return kill(signal);
    };
    child.once('exit', (code, signal) => resolve({ code, signal, ms: performance.now() - signalledAt }));
  });
  return { child, exited, output: () => output };
}

/** Image paths in ENV values (/app/migrations) point into the directory standing in for /app. */
function mapAppPaths(env: Record<string, string>, workdir: string, appDir: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.startsWith(`${workdir}/`) ? path.join(appDir, v.slice(workdir.length)) : v,
    ]),
  );
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

const images = {
  api: readDockerfile('Dockerfile.api'),
  relay: readDockerfile('Dockerfile.relay'),
  inventory: readDockerfile('Dockerfile.inventory'),
};
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  packageManager: string;
};

describe('Dockerfiles', () => {
  it.each(Object.entries(images))(
    '%s: pinned to the project’s Node and pnpm, built by the shared script, run as non-root',
    (app, image) => {
      expect(image.args['NODE_VERSION']).toBe(
        readFileSync(path.join(REPO_ROOT, '.nvmrc'), 'utf8').trim().split('.')[0],
      );
      expect(`pnpm@${image.args['PNPM_VERSION']}`).toBe(packageJson.packageManager);
      expect(image.runtime.from).toMatch(/^node:\$\{NODE_VERSION\}-slim AS runtime$/);
      expect(image.buildRuns).toContain('pnpm install --offline --frozen-lockfile');
      expect(image.buildRuns).toContain(`scripts/image-build.sh ${app} /out`);
      expect(image.runtime.copies).toContain(`--from=build /out ${image.runtime.workdir}`);
      expect(image.runtime.workdir).toBe('/app');
      expect(image.runtime.user).toBe('node');
      expect(image.runtime.cmd[0]).toBe('node');
      expect(image.runtime.healthcheck[0]).toBe('node');
      expect(image.runtime.env['NODE_ENV']).toBe('production');
    },
  );

  it('.dockerignore keeps dependencies, builds and the toolchain out of the context', () => {
    const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['.git', '.tools', '**/node_modules', '**/dist']) expect(ignore).toContain(entry);
  });
});

// ---------------------------------------------------------------------------------------------- compose

const composeCommand = (): string[] | undefined => {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0)
    return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  return undefined;
};

describe('docker-compose files', () => {
  const compose = composeCommand();

  it.each([[['docker-compose.yml']], [['docker-compose.yml', 'docker-compose.cluster.yml']]])(
    '%j is valid for a real compose implementation',
    async (files) => {
      // scripts/test-tools.sh, run by scripts/run.sh test and .ci/run, installs Debian's docker-compose
      // when no compose is present.
      expect(compose, 'neither `docker compose` nor `docker-compose` is installed').toBeDefined();
      const [cmd = '', ...pre] = compose ?? [];
      // With the observability profile on: compose v2's `config` leaves out services of inactive
      // profiles, docker-compose 1.x lists them all; this way both list the same.
      const { stdout } = await run(
        cmd,
        [...pre, ...files.flatMap((f) => ['-f', f]), '--profile', 'observability', 'config'],
        { cwd: REPO_ROOT },
      );
      const config = parseYaml(stdout) as { services: Record<string, Record<string, unknown>> };
      const observability = ['grafana', 'prometheus'];
      expect(Object.keys(config.services).sort()).toEqual(
        files.length === 1
          ? [
              'api',
              'grafana',
              'inventory',
              'inventory-migrate',
              'inventory-relay',
              'migrate',
              'nats',
              'postgres',
              'prometheus',
              'relay',
            ]
          : [
              'api',
              'grafana',
              'inventory',
              'inventory-migrate',
              'inventory-relay',
              'migrate',
              'nats',
              'nats-2',
              'nats-3',
              'postgres',
              'prometheus',
              'relay',
            ],
      );
      // A plain `docker compose up` starts the service alone; Prometheus and Grafana only with the profile.
      for (const [name, service] of Object.entries(config.services)) {
        expect(service['profiles'], name).toEqual(
          observability.includes(name) ? ['observability'] : undefined,
        );
      }
    },
  );

  it('observability profile: Prometheus gets the rules and scrape jobs the rules name, Grafana the dashboard and its data source', async () => {
    const services = main.services;
    const mounts = (name: string) =>
      ((services[name]?.['volumes'] ?? []) as string[])
        .map((v) => v.split(':'))
        .filter(([src]) => src?.startsWith('./'));
    // Every file or directory mounted from the repository exists.
    for (const name of ['prometheus', 'grafana']) {
      for (const [src] of mounts(name)) expect(existsSync(path.join(REPO_ROOT, src ?? '')), src).toBe(true);
    }
    const promMounts = Object.fromEntries(mounts('prometheus').map(([src, dst]) => [dst, src]));
    const promConfig = parseYaml(
      readFileSync(path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'),
    ) as {
      rule_files: string[];
      scrape_configs: { job_name: string }[];
    };
    // rule_files resolve next to the config file in the container, where rules.yml is mounted.
    for (const file of promConfig.rule_files) {
      expect(promMounts[path.posix.join('/etc/prometheus', file)]).toBe('./deploy/prometheus/rules.yml');
    }
    expect(promConfig.scrape_configs.map((c) => c.job_name).sort()).toEqual(['orders-api', 'orders-relay']);
    // promtool (scripts/test-tools.sh installs it) checks the config and the rules it loads.
    await run('promtool', ['check', 'config', path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml')]);

    const grafanaMounts = Object.fromEntries(mounts('grafana').map(([src, dst]) => [src, dst]));
    const provisioning = path.join(REPO_ROOT, 'deploy/grafana/provisioning');
    const datasources = parseYaml(
      readFileSync(path.join(provisioning, 'datasources/prometheus.yml'), 'utf8'),
    ) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    const providers = parseYaml(readFileSync(path.join(provisioning, 'dashboards/orders.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    expect(grafanaMounts['./deploy/grafana/provisioning']).toBe('/etc/grafana/provisioning');
    expect(providers.providers[0]?.options.path).toBe(grafanaMounts['./deploy/grafana/dashboards']);
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    const dashboard = JSON.parse(
      readFileSync(path.join(REPO_ROOT, 'deploy/grafana/dashboards/orders.json'), 'utf8'),
    ) as { panels: { datasource: { uid: string }; targets: { datasource: { uid: string } }[] }[] };
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid).toBe('prometheus');
      for (const t of panel.targets) expect(t.datasource.uid).toBe('prometheus');
    }
  });

  const main = parseYaml(readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), {
    merge: true,
  }) as {
    services: Record<string, Record<string, unknown>>;
  };

  it('lets relays scale: no published port, no container name, started after migrate and a healthy NATS', () => {
    const relay = main.services['relay'] ?? {};
    expect(relay['ports']).toBeUndefined();
    expect(relay['container_name']).toBeUndefined();
    expect(relay['depends_on']).toEqual({
      migrate: { condition: 'service_completed_successfully' },
      nats: { condition: 'service_healthy' },
    });
    expect(main.services['api']?.['depends_on']).toEqual({
      migrate: { condition: 'service_completed_successfully' },
    });
    for (const name of ['postgres', 'nats']) expect(main.services[name]?.['healthcheck']).toBeDefined();
  });

  it('builds each service from the Dockerfiles this test runs, and uses the seed variables', () => {
    expect(main.services['api']?.['build']).toMatchObject({ dockerfile: 'Dockerfile.api' });
    expect(main.services['migrate']?.['build']).toMatchObject({ dockerfile: 'Dockerfile.api' });
    expect(main.services['relay']?.['build']).toMatchObject({ dockerfile: 'Dockerfile.relay' });
    expect(main.services['inventory']?.['build']).toMatchObject({ dockerfile: 'Dockerfile.inventory' });
    expect(main.services['inventory-migrate']?.['build']).toMatchObject({
      dockerfile: 'Dockerfile.inventory',
    });
    // The inventory's events go out through the unchanged relay image, pointed at its database.
    expect(main.services['inventory-relay']?.['build']).toMatchObject({ dockerfile: 'Dockerfile.relay' });
    expect(main.services['inventory-relay']?.['environment']).toMatchObject({
      POSTGRES_DB: 'inventory',
      NATS_STREAM: 'inventory',
    });
    expect(main.services['inventory']?.['environment']).toMatchObject({ INVENTORY_POSTGRES_DB: 'inventory' });
    const env = main.services['relay']?.['environment'] as Record<string, string>;
    for (const v of [
      'DB_HOST',
      'DB_PORT',
      'POSTGRES_DB',
      'POSTGRES_USER',
      'POSTGRES_PASSWORD',
      'NATS_URL',
      'NATS_STREAM',
    ]) {
      expect(Object.keys(env)).toContain(v);
    }
  });
});

// ---------------------------------------------------------------------------------------------- images

describe('image contents, started as the images would start them', () => {
  let dir = '';
  const out = { api: '', relay: '', inventory: '' };
  const tdbPromise = createTestDatabase();
  const natsPromise = startNatsServer();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'orders-images-'));
    for (const app of ['api', 'relay', 'inventory'] as const) {
      out[app] = path.join(dir, app);
      await run('bash', [path.join(REPO_ROOT, 'scripts/image-build.sh'), app, out[app]], {
        cwd: REPO_ROOT,
        maxBuffer: 16 * 1024 * 1024,
      });
    }
  }, 180_000);
  afterAll(async () => {
    await (await tdbPromise).drop();
    await (await natsPromise).dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('hold production dependencies only, the built workspace packages and the migrations', async () => {
    for (const app of ['api', 'relay'] as const) {
      const root = out[app];
      expect(existsSync(path.join(root, 'dist/main.js'))).toBe(true);
      expect(
        (await readdir(path.join(root, 'migrations'))).filter((f) => f.endsWith('.sql')).length,
      ).toBeGreaterThan(0);
      expect(existsSync(path.join(root, 'node_modules/@orders/db/dist/index.js'))).toBe(true);
      for (const dev of ['vitest', 'typescript', '@orders/testkit', 'tsx']) {
        expect(existsSync(path.join(root, 'node_modules', dev)), `${app} carries ${dev}`).toBe(false);
      }
    }
    expect(existsSync(path.join(out.api, 'dist/migrate.js'))).toBe(true);
    expect(existsSync(path.join(out.relay, 'dist/cli.js'))).toBe(true);
    // The inventory: its own migrations in its package, the consumer's in that package, the outbox's apart.
    const inv = out.inventory;
    expect(existsSync(path.join(inv, 'dist/migrate.js'))).toBe(true);
    expect(await readdir(path.join(inv, 'migrations'))).toEqual(['0001_inventory.sql']);
    expect(
      existsSync(path.join(inv, 'node_modules/@orders/consumer/migrations/0001_consumer_inbox.sql')),
    ).toBe(true);
    expect(await readdir(path.join(inv, 'outbox-migrations'))).toContain('0012_outbox_log.sql');
    for (const dev of ['vitest', 'typescript', '@orders/testkit', 'tsx']) {
      expect(existsSync(path.join(inv, 'node_modules', dev)), `inventory carries ${dev}`).toBe(false);
    }
  });

  it('the inventory image migrates its own database and serves its API; SIGTERM exits cleanly', async () => {
    const tdb = await tdbPromise;
    const nats = await natsPromise;
    const fresh = `${tdb.name}_inv`;
    const compose = parseYaml(readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), {
      merge: true,
    }) as { services: Record<string, { command?: string[] }> };
    const parts = new URL(tdb.url);
    // The compose file's INVENTORY_ variables, pointed at the test's server: a database that does not exist yet.
    const env = {
      INVENTORY_DB_HOST: parts.hostname,
      INVENTORY_DB_PORT: parts.port || '5432',
      INVENTORY_POSTGRES_DB: fresh,
      INVENTORY_POSTGRES_USER: decodeURIComponent(parts.username),
      ...(parts.password ? { INVENTORY_POSTGRES_PASSWORD: decodeURIComponent(parts.password) } : {}),
    };
    const migrate = startLikeImage(
      images.inventory,
      out.inventory,
      compose.services['inventory-migrate']?.command ?? [],
      env,
    );
    const migrated = await migrate.exited;
    expect(migrated.code, migrate.output()).toBe(0);
    expect(migrate.output()).toMatch(/"msg":"database migrated"/);
    const port = await freePort();
    const inventory = startLikeImage(images.inventory, out.inventory, images.inventory.runtime.cmd, {
      ...env,
      INVENTORY_PORT: String(port),
      NATS_URL: nats.url,
      NATS_STREAM: 'images_inv',
    });
    try {
      const [, ...args] = images.inventory.runtime.healthcheck;
      await waitFor(
        'inventory health check',
        async () =>
          (await new Promise<number | null>((resolve) =>
            spawn(process.execPath, args, { env: { INVENTORY_PORT: String(port) }, stdio: 'ignore' }).once(
              'exit',
              (code) => resolve(code),
            ),
          )) === 0,
      );
      const put = await fetch(`http://127.0.0.1:${port}/inventory/IMG-1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ qty_on_hand: 4 }),
      });
      expect(put.status).toBe(201);
      expect(await (await fetch(`http://127.0.0.1:${port}/inventory/IMG-1`)).json()).toEqual({
        sku: 'IMG-1',
        qty_on_hand: 4,
        reserved_qty: 0,
      });
    } finally {
      inventory.child.kill('SIGTERM');
    }
    const exit = await inventory.exited;
    expect(exit.code, inventory.output()).toBe(0);
    expect(exit.ms).toBeLessThan(10_000);
    await adminQuery(tdb.adminUrl, [`DROP DATABASE IF EXISTS "${fresh}" WITH (FORCE)`]);
  }, 60_000);

  it('migrate, API and relay run from them: health checks pass, one order in, one event out, SIGTERM exits cleanly', async () => {
    const tdb = await tdbPromise;
    const nats = await natsPromise;
    // A database that has never seen a migration: the compose file's migrate service creates the schema.
    const fresh = `${tdb.name}_img`;
    const freshUrl = new URL(tdb.url);
    freshUrl.pathname = `/${fresh}`;
    const compose = parseYaml(readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), {
      merge: true,
    }) as {
      services: Record<string, { command?: string[] }>;
    };
    const migrateCommand = compose.services['migrate']?.command ?? [];
    const migrate = startLikeImage(images.api, out.api, migrateCommand, {
      DATABASE_URL: freshUrl.toString(),
    });
    const migrated = await migrate.exited;
    expect(migrated.code, migrate.output()).toBe(0);
    expect(migrate.output()).toMatch(/"msg":"database migrated"/);

    const apiPort = await freePort();
    const relayPort = await freePort();
    const stream = 'images';
    const api = startLikeImage(images.api, out.api, images.api.runtime.cmd, {
      DATABASE_URL: freshUrl.toString(),
      SERVICE_PORT: String(apiPort),
      NATS_STREAM: stream,
    });
    const relay = startLikeImage(images.relay, out.relay, images.relay.runtime.cmd, {
      DATABASE_URL: freshUrl.toString(),
      NATS_URL: nats.url,
      NATS_STREAM: stream,
      RELAY_PORT: String(relayPort),
    });
    const nc = await connect({ servers: nats.url });
    try {
      // The images' HEALTHCHECK commands, run as Docker would run them inside each container.
      const healthcheck = async (image: Dockerfile, env: Record<string, string>) => {
        const [, ...args] = image.runtime.healthcheck;
        return new Promise<number | null>((resolve) =>
          spawn(process.execPath, args, { env, stdio: 'ignore' }).once('exit', (code) => resolve(code)),
        );
      };
      await waitFor(
        'API health check',
        async () => (await healthcheck(images.api, { SERVICE_PORT: String(apiPort) })) === 0,
      );
      await waitFor(
        'relay health check',
        async () => (await healthcheck(images.relay, { RELAY_PORT: String(relayPort) })) === 0,
      );
      await waitFor('relay ready', async () => (await fetch(`http://127.0.0.1:${relayPort}/ready`)).ok);

      const res = await fetch(`http://127.0.0.1:${apiPort}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          customer_id: crypto.randomUUID(),
          items: [{ sku: 'WIDGET-001', qty: 2, price: 19.99 }],
        }),
      });
      expect(res.status).toBe(201);
      const order = (await res.json()) as { id: string };
      const jsm = await nc.jetstreamManager();
      await waitFor(
        'the event in the stream',
        async () => (await jsm.streams.info(stream)).state.messages === 1,
      );
      const msg = await jsm.streams.getMessage(stream, { seq: 1 });
      expect(msg.subject).toBe(`${stream}.order_created`);
      expect(msg.string()).toContain(order.id);
      const c = new pg.Client({ connectionString: freshUrl.toString() });
      await c.connect();
      const outbox = await c.query<{ id: string; aggregate_id: string }>(
        'SELECT id, aggregate_id FROM outbox',
      );
      await c.end();
      expect(outbox.rows).toHaveLength(1);
      expect(outbox.rows[0]?.aggregate_id).toBe(order.id);
      expect(msg.header.get('Nats-Msg-Id')).toBe(outbox.rows[0]?.id);

      // The operator CLI in the relay image (`relay status` there is `node /app/dist/cli.js status`).
      const status = startLikeImage(images.relay, out.relay, ['node', 'dist/cli.js', 'status', '--json'], {
        DATABASE_URL: freshUrl.toString(),
        NATS_URL: nats.url,
        NATS_STREAM: stream,
      });
      expect((await status.exited).code).toBe(0);
      expect(JSON.parse(status.output().trim().split('\n').at(-1) ?? '{}')).toMatchObject({
        pending: 0,
        published: 1,
        stream,
        stream_messages: 1,
      });
    } finally {
      await nc.close();
      api.child.kill('SIGTERM');
      relay.child.kill('SIGTERM');
    }
    const [apiExit, relayExit] = await Promise.all([api.exited, relay.exited]);
    expect(apiExit.code, api.output()).toBe(0);
    expect(relayExit.code, relay.output()).toBe(0);
    expect(apiExit.ms).toBeLessThan(10_000);
    expect(relayExit.ms).toBeLessThan(10_000);
    await adminQuery(tdb.adminUrl, [`DROP DATABASE IF EXISTS "${fresh}" WITH (FORCE)`]);
  }, 60_000);

  it('export traces from them with OTEL_EXPORTER_OTLP_ENDPOINT alone: the SDK and its instrumentations ship in the images', async () => {
    const tdb = await tdbPromise;
    const nats = await natsPromise;
    const otlp = await startOtlpReceiver();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const apiPort = await freePort();
    const stream = 'images_traced';
    const api = startLikeImage(images.api, out.api, images.api.runtime.cmd, {
      ...otel,
      DATABASE_URL: tdb.url,
      SERVICE_PORT: String(apiPort),
      NATS_STREAM: stream,
    });
    const relay = startLikeImage(images.relay, out.relay, images.relay.runtime.cmd, {
      ...otel,
      DATABASE_URL: tdb.url,
      NATS_URL: nats.url,
      NATS_STREAM: stream,
      RELAY_PORT: String(await freePort()),
    });
    try {
      await waitFor('API health', async () => (await fetch(`http://127.0.0.1:${apiPort}/health`)).ok);
      const res = await fetch(`http://127.0.0.1:${apiPort}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ customer_id: crypto.randomUUID(), items: [{ sku: 'W-1', qty: 1, price: 1 }] }),
      });
      expect(res.status).toBe(201);
      const spans = await otlp.waitFor('server, database and publish spans of one trace', (all) => {
        const server = all.find((s) => s.kind === 2 && s.name === 'POST /orders');
        const trace = all.filter((s) => s.traceId === server?.traceId);
        return trace.some((s) => s.kind === 3) && trace.some((s) => s.kind === 4);
      });
      expect(new Set(spans.map((s) => s.serviceName))).toEqual(
        new Set(['orders-service-api', 'orders-service-relay']),
      );
    } finally {
      api.child.kill('SIGTERM');
      relay.child.kill('SIGTERM');
      await Promise.all([api.exited, relay.exited]);
      await otlp.close();
    }
  }, 60_000);
});
