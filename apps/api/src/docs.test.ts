import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterEach, describe, expect, it } from 'vitest';
import { registerDocs } from './docs.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('GET /docs/assets/:file', () => {
  it('retries a failed read on the next request instead of serving the failure until restart', async () => {
    // A real directory where the asset is missing at first (a deploy still copying files, a
    // transient EMFILE), then appears.
    dir = await mkdtemp(path.join(os.tmpdir(), 'docs-assets-'));
    const app = new OpenAPIHono();
    app.onError((_err, c) => c.text('asset read failed', 500)); // createApp maps it to a problem body
    registerDocs(app, { assetsDir: dir });

    expect((await app.request('/docs/assets/swagger-ui.css')).status).toBe(500);
    await writeFile(path.join(dir, 'swagger-ui.css'), 'body { margin: 0 }');
    const res = await app.request('/docs/assets/swagger-ui.css');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await res.text()).toBe('body { margin: 0 }');

    // A success is kept: the file going away later changes nothing.
    await rm(path.join(dir, 'swagger-ui.css'));
    expect(await (await app.request('/docs/assets/swagger-ui.css')).text()).toBe('body { margin: 0 }');
  });
});
