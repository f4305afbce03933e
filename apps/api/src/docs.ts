import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Env } from 'hono';

// Served from the swagger-ui-dist package, never a CDN: many deployments have no internet.
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Orders API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>`;

const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
});`;

export interface DocsOptions {
  /** Where the Swagger UI files are; the swagger-ui-dist package's directory by default. */
  readonly assetsDir?: string;
}

/** `GET /docs`: Swagger UI for `/openapi.json`, each asset read from disk on first use and kept in memory. */
export function registerDocs<E extends Env>(app: OpenAPIHono<E>, options: DocsOptions = {}): void {
  const dir =
    options.assetsDir ?? path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const cache = new Map<string, Promise<Buffer>>();
  const csp = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

  app.get('/docs', (c) => {
    c.header('Content-Security-Policy', csp);
    return c.html(PAGE);
  });
  // One route for every asset, init.js included: a static path beside `:file` would make Hono's
  // RegExpRouter give up on the whole app and fall back to its slower TrieRouter for every request.
  app.get('/docs/assets/:file', async (c) => {
    const file = c.req.param('file');
    if (file === 'init.js') {
      c.header('Content-Type', 'text/javascript; charset=utf-8');
      return c.body(INIT);
    }
    const type = ASSETS[file];
    if (type === undefined) return c.notFound();
    let body = cache.get(file);
    if (!body) {
      // The promise is kept so concurrent requests share one read, but only while it can still
      // succeed: a failed read (a file not there yet, EMFILE) is forgotten and the next request retries.
      const reading = readFile(path.join(dir, file));
      reading.catch(() => {
        if (cache.get(file) === reading) cache.delete(file);
      });
      cache.set(file, reading);
      body = reading;
    }
    c.header('Content-Type', type);
    c.header('Cache-Control', 'public, max-age=86400');
    return c.body(new Uint8Array(await body));
  });
}
