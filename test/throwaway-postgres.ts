import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startOnReservedPort } from '@orders/testkit';
import { startThrowawayPostgres } from '../scripts/local-services.mjs';

type Options = Omit<Parameters<typeof startThrowawayPostgres>[0], 'port'>;

/**
 * A throwaway PostgreSQL cluster of the test's own (scripts/local-services.mjs) on a reserved port.
 * PostgreSQL cannot be told to choose its port (the port also names its socket and lock files), and
 * a test restarts it on the same one, so: a port reserved for the rest of the test process, and the
 * cluster again on another when the start failed because the port was taken. pg_ctl only says
 * "could not start server": the reason is in the server log, quoted into the error here.
 */
export async function startTestPostgres(
  options: Options,
): Promise<{ port: number; server: Awaited<ReturnType<typeof startThrowawayPostgres>> }> {
  return startOnReservedPort(async ({ port }) => {
    const log = path.join(options.dataDir, 'server.log');
    const from = sizeOf(log);
    try {
      return { port, server: await startThrowawayPostgres({ ...options, port }) };
    } catch (err) {
      const said = sizeOf(log) > from ? readFileSync(log).subarray(from).toString() : '';
      throw new Error(`${(err as Error).message}\nserver.log:\n${said}`, { cause: err });
    }
  });
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
