// `pnpm start` / `scripts/run.sh start`: migrate, then run the API (and the relay, once it exists) as
// child processes until SIGINT/SIGTERM, which is forwarded to each. Needs a build (`pnpm build`).
// Configuration comes from the environment; the defaults reach PostgreSQL on 127.0.0.1:5432.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const services = [
  { name: 'api', entry: 'apps/api/dist/main.js' },
  { name: 'relay', entry: 'apps/relay/dist/main.js' },
].filter((s) => existsSync(new URL(`../${s.entry}`, import.meta.url)));

function run(entry) {
  return spawn(process.execPath, [entry], { cwd: root, stdio: 'inherit', env: process.env });
}

const migrate = run('packages/db/dist/cli.js');
const migrated = await new Promise((resolve) => migrate.once('exit', (code) => resolve(code)));
if (migrated !== 0) {
  console.error(
    `start: migrations failed (exit ${migrated}); is PostgreSQL reachable with the configured DATABASE_URL / DB_* variables?`,
  );
  process.exit(1);
}

const children = services.map((s) => ({ ...s, child: run(s.entry) }));
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
            console.error(`start: ${name} exited (${signal ?? code}); stopping the rest`);
            stopAll('SIGTERM');
          }
          resolve(code ?? 1);
        }),
      ),
  ),
);
process.exitCode = codes.every((c) => c === 0) ? 0 : 1;
