import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { trace } from '@opentelemetry/api';
import {
  BEARER_SCHEME,
  bearerSecurityScheme,
  createAuthGuard,
  type JwtVerifier,
  requireStaticToken,
} from '@orders/auth';
import type { ApiConfig } from '@orders/config';
import { type Db, isDatabaseUnavailable, type OutboxNotifier, pingDatabase } from '@orders/db';
import {
  type ErrorProblem,
  fieldErrors,
  type ProblemDocument,
  ProblemError,
  problem,
  problemForError,
} from '@orders/http-problem';
import type { Logger } from '@orders/logger';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { routePath } from 'hono/route';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { limitBody } from './body.js';
import { registerDocs } from './docs.js';
import { createMetrics, type Metrics } from './metrics.js';
import { registerOrderRoutes } from './orders/orders.index.js';
import { createOrdersService } from './orders/orders.service.js';
import { problemSchema } from './problem.js';
import { rateLimit } from './rate-limit.js';
import { type AppEnv, traceContextFrom } from './trace.js';

export interface AppDeps {
  readonly db: Db;
  readonly logger: Logger;
  readonly config: Pick<ApiConfig, 'serviceName' | 'limits' | 'stream'> &
    Partial<Pick<ApiConfig, 'idempotencyTtlMs' | 'rateLimit'>>;
  /** A fresh registry when absent. */
  readonly metrics?: Metrics;
  /** Sends the relay's wake-up hint after each commit (OUTBOX_NOTIFY=after-commit). */
  readonly notifier?: OutboxNotifier;
  readonly now?: () => Date;
  /** Bearer JWT verification for the orders routes; absent: authentication off, everything open. */
  readonly verifier?: JwtVerifier;
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
  readonly metricsToken?: string;
}

const METRICS_SCHEME = 'metricsToken';
// The repository carries no open-source licence: the service is the company's own. OpenAPI 3.1 names
// a licence by SPDX expression (`identifier`); the typings behind doc31 only know 3.0's name and url.
const LICENSE = { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' };

/**
 * Builds the HTTP application. Nothing here reads the environment, listens on a port or installs a
 * signal handler: `main.ts` does that, tests call `app.request()` on the same object.
 */
export function createApp(deps: AppDeps) {
  const { db, logger, config } = deps;
  const metrics = deps.metrics ?? createMetrics();
  const log = logger.child({ component: 'http' });

  const app = new OpenAPIHono<AppEnv>({
    // Every validation failure (body, path, query) becomes the same 422 problem, raised into onError.
    defaultHook: (result) => {
      if (!result.success) {
        const errors = fieldErrors(result.error.issues);
        const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
        throw new ProblemError(422, 'validation_failed', detail, errors);
      }
    },
  });

  app.use(requestId());
  // W3C trace context: the caller's traceparent (or one started here) goes onto the events this request
  // writes; with the OpenTelemetry SDK on, the HTTP server span's (undefined otherwise: a no-op lookup).
  app.use(async (c, next) => {
    const span = trace.getActiveSpan();
    c.set(
      'trace',
      traceContextFrom(c.req.header('traceparent'), c.req.header('tracestate'), span?.spanContext()),
    );
    await next();
    // The HTTP instrumentation knows the method only; the route template is known here.
    const route = span?.isRecording() ? routePath(c, -1) : '';
    if (route !== '' && !route.includes('*')) {
      span?.setAttribute('http.route', route);
      span?.updateName(`${c.req.method} ${route}`);
    }
  });

  // One log line and one histogram sample per request, after the response is known.
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const matched = routePath(c, -1);
    const route = matched === '' || matched.includes('*') ? 'unmatched' : matched;
    metrics.httpDuration.observe({ method: c.req.method, route, status: String(c.res.status) }, seconds);
    if (!log.isLevelEnabled('info')) return;
    // c.get, not c.var: Hono's c.var builds a new object of every variable on each access.
    log.info(
      {
        request_id: c.get('requestId'),
        trace_id: c.get('trace')?.traceId,
        // The verified caller, never the token; absent when authentication is off or the token was refused.
        sub: c.get('principal')?.subject,
        method: c.req.method,
        path: c.req.path,
        route,
        status: c.res.status,
        ms: Math.round(seconds * 10_000) / 10,
      },
      'request',
    );
  });

  if (config.rateLimit && config.rateLimit.perMinute > 0) {
    const limiter = rateLimit(config.rateLimit);
    app.on('POST', '/orders', limiter);
  }

  const body = limitBody(config.limits.bodyBytes);
  app.use('/orders/*', body);
  app.use('/orders', body);

  const service = createOrdersService({
    db,
    stream: config.stream,
    notifier: deps.notifier,
    ...(deps.now ? { now: deps.now } : {}),
    ...(config.idempotencyTtlMs !== undefined ? { idempotencyTtlMs: config.idempotencyTtlMs } : {}),
  });
  const guard = createAuthGuard(deps.verifier);
  registerOrderRoutes(app, { service, metrics, limits: config.limits, guard });
  app.openAPIRegistry.registerComponent(
    'securitySchemes',
    BEARER_SCHEME,
    bearerSecurityScheme(
      'An access token (JWT) of the issuer the API is configured with (AUTH_ISSUER, AUTH_AUDIENCE), ' +
        'signed with RS256, ES256 or EdDSA. Reading needs the scope orders:read, changes orders:write.',
    ),
  );
  app.openAPIRegistry.registerComponent('securitySchemes', METRICS_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'The METRICS_TOKEN the operator set; without one, /metrics is open.',
  });
  if (deps.metricsToken !== undefined) app.use('/metrics', requireStaticToken(deps.metricsToken));

  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      operationId: 'health',
      tags: ['operations'],
      summary: 'Up and able to reach the database.',
      // Open to anyone: orchestrators probe it without credentials.
      security: [],
      responses: {
        200: { description: 'Healthy.', content: { 'application/json': { schema: healthSchema } } },
        503: {
          description: 'The database does not answer.',
          content: { 'application/json': { schema: healthSchema } },
        },
      },
    }),
    async (c) => {
      try {
        await pingDatabase(db);
        return c.json({ status: 'ok' as const, database: 'ok' as const }, 200);
      } catch (err) {
        log.warn({ err }, 'health check: database unreachable');
        return c.json({ status: 'unavailable' as const, database: 'unreachable' as const }, 503);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/metrics',
      operationId: 'metrics',
      tags: ['operations'],
      summary: 'Prometheus metrics.',
      // Open unless the operator set METRICS_TOKEN: then the scraper sends it as a bearer token.
      security: [{}, { [METRICS_SCHEME]: [] }],
      responses: {
        200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } },
        401: {
          description: 'METRICS_TOKEN is set, and the request did not carry it as a bearer token.',
          content: { 'application/problem+json': { schema: problemSchema } },
        },
      },
    }),
    async (c) => {
      return c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
    },
  );

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Orders API',
      version: '1.0.0',
      description:
        'Orders with a transactional outbox: each created order commits together with its order_created event, ' +
        'which the relay publishes to NATS JetStream exactly once. Errors are RFC 9457 problem documents.',
      license: LICENSE,
    },
    // Relative: the document is served by the API itself, so Swagger UI's "Try it out" calls this host.
    servers: [{ url: '/', description: 'The server that serves this document.' }],
    tags: [
      {
        name: 'orders',
        description:
          'Create, read, list and change orders. Bearer JWT with scope orders:read (GET) or orders:write ' +
          '(POST, PATCH, cancel) when authentication is on.',
      },
      { name: 'operations', description: 'Health and metrics for the platform; no order data.' },
    ],
  });
  registerDocs(app);

  app.notFound((c) => respond(c, problem(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`)));

  app.onError((err, c) => {
    const answer = problemForError(err, {
      logger: log,
      requestId: c.var.requestId,
      isDatabaseUnavailable,
      classify: (e) => apiProblem(e, c, log),
    });
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value);
    return respond(
      c,
      problem(answer.status, answer.code, answer.detail, {
        errors: answer.errors,
        extensions: answer.extensions,
      }),
    );
  });

  return { app, metrics };
}
export type App = ReturnType<typeof createApp>['app'];

const healthSchema = z
  .object({ status: z.enum(['ok', 'unavailable']), database: z.enum(['ok', 'unreachable']) })
  .openapi('Health');

function respond(c: Context, body: ProblemDocument): Response {
  const withInstance: ProblemDocument = { ...body, instance: c.req.path, request_id: c.var.requestId };
  c.header('Content-Type', 'application/problem+json');
  return c.body(JSON.stringify(withInstance), body.status as ContentfulStatusCode);
}

/** The API's own cases: what Hono's body checks throw, and values the database refused. */
function apiProblem(err: unknown, c: Context<AppEnv>, log: Logger): ErrorProblem | undefined {
  if (err instanceof HTTPException) {
    const status = err.status;
    const code =
      status === 400
        ? 'malformed_json'
        : status === 413
          ? 'payload_too_large'
          : status === 415
            ? 'unsupported_media_type'
            : 'http_error';
    const detail =
      status === 400
        ? 'the body is not valid JSON'
        : status === 415
          ? `expected Content-Type application/json, got ${c.req.header('content-type') ?? 'none'}`
          : err.message || 'request rejected';
    return { status, code, detail, headers: {} };
  }
  if (isPgDataException(err)) {
    // Validation should have caught it; if a value still cannot be stored, it is the client's input.
    log.warn({ err, request_id: c.var.requestId }, 'value rejected by the database');
    return {
      status: 422,
      code: 'validation_failed',
      detail: 'a value in the request cannot be stored',
      headers: {},
    };
  }
  return undefined;
}

/** SQLSTATE class 22: a value the database refused (bad encoding, out of range). */
function isPgDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code);
}
