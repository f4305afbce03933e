import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setupApi } from './helpers.js';

// Swagger UI must work offline: many deployments (and this machine) have no internet. A real
// headless Chromium loads /docs and every request it makes must stay on this service.
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const { tdb, app } = await setupApi();
afterAll(() => tdb.drop());

describe('Swagger UI in a headless browser', () => {
  it('renders every operation from /openapi.json without leaving the service', async () => {
    // Never a skip: a machine without a browser fails here, saying what to install.
    // (scripts/run.sh test installs it first through scripts/test-tools.sh.)
    expect(
      existsSync(CHROMIUM),
      `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`,
    ).toBe(true);
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      const foreign: string[] = [];
      const errors: string[] = [];
      page.on('request', (req) => {
        if (!req.url().startsWith(base) && !req.url().startsWith('data:')) foreign.push(req.url());
      });
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${base}/docs`);
      await page.waitForSelector('.opblock-summary-path', { timeout: 20_000 });
      const operations = await page.$$eval('.opblock-summary', (els) =>
        els.map((el) => {
          const method = el.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
          const path = el.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
          return `${method} ${path}`;
        }),
      );
      expect(operations).toEqual(
        expect.arrayContaining([
          'POST /orders',
          'GET /orders',
          'GET /orders/{id}',
          'PATCH /orders/{id}',
          'GET /health',
        ]),
      );
      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await new Promise((r) => server.close(r));
    }
  });
});
