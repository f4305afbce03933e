import { type AuthEnv, createAuthGuard, type JwtVerifier, requireStaticToken } from '@orders/auth';
import type { Consumer } from '@orders/consumer';
import { isDatabaseUnavailable, pingDatabase } from '@orders/db';
import { reservationItemSchema } from '@orders/events';
import { fieldErrors, ProblemError, problemForError } from '@orders/http-problem';
import type { Logger } from '@orders/logger';
import { Hono } from 'hono';
import type { Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { problemResponse } from './problem.js';
import type { InventoryDatabase } from './schema.js';
import { findStock, setStock } from './stock.js';

export interface InventoryAppDeps {
  readonly db: Kysely<InventoryDatabase>;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Readiness includes the consumer's: pulling from its durable. */
  readonly consumer?: Pick<Consumer, 'ready'>;
  /** Bearer tokens checked with it (AUTH_*); without one, authentication is off. */
  readonly verifier?: JwtVerifier;
  /** When set, `GET /metrics` needs it as a bearer token. */
  readonly metricsToken?: string;
}

/** The scopes of the inventory's API, checked as the orders API checks orders:read / orders:write. */
export const INVENTORY_SCOPES = { read: 'inventory:read', write: 'inventory:write' } as const;

const skuSchema = reservationItemSchema.shape.sku;
const stockBodySchema = z.object({ qty_on_hand: z.number().int().min(0).max(2_147_483_647) }).strict();

/** The inventory's HTTP API and ops surface. Nothing here reads the environment or listens. */
export function createInventoryApp(deps: InventoryAppDeps) {
  const { db, registry } = deps;
  const log = deps.logger.child({ component: 'http' });
  const app = new Hono<AuthEnv>();
  const guard = createAuthGuard(deps.verifier);

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    if (log.isLevelEnabled('info')) {
      log.info(
        {
          method: c.req.method,
          path: c.req.path,
          status: c.res.status,
          ms: Math.round((performance.now() - started) * 10) / 10,
          sub: c.get('principal')?.subject,
        },
        'request',
      );
    }
  });

  const sku = (raw: string) => {
    const result = skuSchema.safeParse(raw);
    if (!result.success) {
      throw new ProblemError(
        422,
        'validation_failed',
        `sku: ${result.error.issues[0]?.message ?? 'invalid'}`,
        [{ field: 'sku', pointer: '/sku', message: result.error.issues[0]?.message ?? 'invalid' }],
      );
    }
    return result.data;
  };

  app.put('/inventory/:sku', guard.requireScope(INVENTORY_SCOPES.write), async (c) => {
    const id = sku(c.req.param('sku'));
    if (!/^application\/(.+\+)?json\b/i.test(c.req.header('content-type') ?? '')) {
      throw new ProblemError(
        415,
        'unsupported_media_type',
        `expected Content-Type application/json, got ${c.req.header('content-type') ?? 'none'}`,
      );
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new ProblemError(400, 'malformed_json', 'the body is not valid JSON');
    }
    const parsed = stockBodySchema.safeParse(body);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error.issues);
      throw new ProblemError(
        422,
        'validation_failed',
        errors.map((e) => `${e.field}: ${e.message}`).join('; '),
        errors,
      );
    }
    const { item, created } = await setStock(db, id, parsed.data.qty_on_hand);
    return c.json(item, created ? 201 : 200);
  });

  app.get('/inventory/:sku', guard.requireScope(INVENTORY_SCOPES.read), async (c) => {
    const id = sku(c.req.param('sku'));
    const item = await findStock(db, id);
    if (!item) throw new ProblemError(404, 'not_found', `no inventory for sku ${id}`);
    return c.json(item, 200);
  });

  app.get('/health', async (c) => {
    const ok = await pingDatabase(db).then(
      () => true,
      () => false,
    );
    return c.json({ status: ok ? 'ok' : 'unavailable', database: ok ? 'ok' : 'unreachable' }, ok ? 200 : 503);
  });

  app.get('/ready', async (c) => {
    const database = await pingDatabase(db).then(
      () => 'ok' as const,
      () => 'unreachable' as const,
    );
    const consumer =
      deps.consumer === undefined || deps.consumer.ready ? ('ok' as const) : ('not_consuming' as const);
    const ready = database === 'ok' && consumer === 'ok';
    return c.json({ status: ready ? 'ready' : 'not_ready', database, consumer }, ready ? 200 : 503);
  });

  if (deps.metricsToken !== undefined) app.use('/metrics', requireStaticToken(deps.metricsToken));
  app.get('/metrics', async (c) =>
    c.text(await registry.metrics(), 200, { 'Content-Type': registry.contentType }),
  );

  app.notFound((c) => problemResponse(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    const answer = problemForError(err, { logger: log, isDatabaseUnavailable });
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value);
    return problemResponse(c, answer.status, answer.code, answer.detail, answer.errors, answer.extensions);
  });
  return app;
}
