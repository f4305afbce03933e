import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { setupApi } from './helpers.js';

// What a client team does with the document: lint it with Redocly's recommended rules. Before
// issue 17 that gave 8 errors (no security on any operation, no servers) and 5 warnings.
const REDOCLY = path.join(REPO_ROOT, 'node_modules', '.bin', 'redocly');

const { tdb, app } = await setupApi();
afterAll(() => tdb.drop());

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

describe('redocly lint (recommended) on the served /openapi.json', () => {
  it('finds no error, and no warning but the one accepted below', async () => {
    expect(existsSync(REDOCLY), `no ${REDOCLY}: run pnpm install (@redocly/cli is a dev dependency)`).toBe(
      true,
    );
    const dir = await mkdtemp(path.join(tmpdir(), 'openapi-lint-'));
    try {
      const file = path.join(dir, 'openapi.json');
      await writeFile(file, await (await app.request('/openapi.json')).text());
      // exit 1 on errors: the JSON report is on stdout either way, so read it rather than the exit code.
      const result = await promisify(execFile)(
        REDOCLY,
        ['lint', '--extends', 'recommended', '--format', 'json', file],
        {
          env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
          maxBuffer: 16 * 1024 * 1024,
        },
      ).catch((err: { stdout?: string; stderr?: string }) => ({
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
      }));
      const report = JSON.parse(result.stdout) as LintReport;
      const found = report.problems.map(
        (p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`,
      );
      // /health answers 200 or 503 and nothing else: documenting a 4xx it never sends would be false.
      expect(found).toEqual([
        'warn operation-4xx-response #/paths/~1health/get/responses: Operation must have at least one `4XX` response.',
      ]);
      expect(report.totals.errors).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
