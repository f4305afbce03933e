import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { startTestIssuer } from '@orders/testkit';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setupApi, testVerifier } from './helpers.js';

// Swagger UI must work offline: many deployments (and this machine) have no internet. A real
// headless Chromium loads /docs and every request it makes must stay on this service.
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const { tdb, app } = await setupApi();
afterAll(() => tdb.drop());

const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function expectChromium(): void {
  // Never a skip: a machine without a browser fails here, saying what to install.
  // (scripts/run.sh test installs it first through scripts/test-tools.sh.)
  expect(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`,
  ).toBe(true);
}

describe('Swagger UI in a headless browser', () => {
  it('renders every operation from /openapi.json without leaving the service', async () => {
    expectChromium();
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
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

  it('"Authorize" takes a bearer token that "Try it out" then sends', async () => {
    expectChromium();
    const issuer = await startTestIssuer();
    const secured = await setupApi({ verifier: testVerifier(issuer) });
    const server = serve({ fetch: secured.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    try {
      const token = await issuer.token(['orders:read']);
      const page = await browser.newPage();
      const sent: (string | undefined)[] = [];
      page.on('request', (req) => {
        if (new URL(req.url()).pathname === '/orders') sent.push(req.headers()['authorization']);
      });
      await page.goto(`${base}/docs`);
      await page.locator('.auth-wrapper button.authorize').click();
      const scheme = page.locator('.modal-ux .auth-container').filter({ hasText: 'bearerAuth' });
      await scheme.locator('input').fill(token);
      await scheme.locator('button.authorize').click();
      await page.locator('.modal-ux button.close-modal').click();

      const list = page.locator('#operations-orders-listOrders');
      await list.locator('.opblock-summary').click();
      await list.locator('button.try-out__btn').click();
      await list.locator('button.execute').click();
      const status = list.locator('.live-responses-table .response .response-col_status').first();
      await status.waitFor({ timeout: 20_000 });
      expect((await status.textContent())?.trim()).toBe('200');
      expect(sent).toEqual([`Bearer ${token}`]);
    } finally {
      await browser.close();
      await new Promise((r) => server.close(r));
      await issuer.jwks.stop();
      await secured.tdb.drop();
    }
  });
});
