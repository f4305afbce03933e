import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SEED_ORDER, setupAuthenticatedApi } from './helpers.js';

// Fuzzing driven by the OpenAPI document the API serves: for every operation, requests are generated from
// its own parameter and body schemas, either valid or with values mutated (wrong types, out-of-range
// numbers, odd strings, missing or extra fields). Whatever comes out, the answer is documented for the
// operation, and no answer is a 5xx; every error is a problem document.

// CI runs a fixed seed, so a run that lands is repeatable; elsewhere every run explores new cases.
// FUZZ_SEED=<n> replays a seed that fast-check printed.
const FUZZ_SEED = process.env['FUZZ_SEED'] ?? (process.env['CI'] ? '20261126' : undefined);
if (FUZZ_SEED !== undefined) fc.configureGlobal({ seed: Number(FUZZ_SEED) });

// With authentication on and a token holding both scopes: the API as deployed, every guard in the path.
const { app, close } = await setupAuthenticatedApi();
afterAll(close);

type Schema = {
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  $ref?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
  default?: unknown;
};
type Operation = {
  parameters?: { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
};

const doc = (await (await app.request('/openapi.json')).json()) as {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
};

function resolve(schema: Schema): Schema {
  if (schema.$ref) {
    const name = schema.$ref.split('/').at(-1) ?? '';
    return resolve(doc.components?.schemas?.[name] ?? {});
  }
  if (schema.anyOf || schema.oneOf) return resolve((schema.anyOf ?? schema.oneOf ?? [])[0] ?? {});
  return schema;
}

const wrong = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.constantFrom(-1, 0, 1e21, -1e21, 2 ** 53 + 1),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\ud800',
    'NaN',
    'Infinity',
    '9'.repeat(400),
    '../../etc/passwd',
    "'; DROP TABLE orders; --",
  ),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

/** Values for a schema: mostly valid ones, with a chance of a wrong one at every level. */
function fromSchema(input: Schema, depth = 0): fc.Arbitrary<unknown> {
  const schema = resolve(input);
  const valid = validFor(schema, depth);
  return fc.oneof({ arbitrary: valid, weight: 5 }, { arbitrary: wrong, weight: 1 });
}

function validFor(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      if (depth > 4 || !schema.properties)
        return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
      const required = new Set(schema.required ?? []);
      const shape: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, child] of Object.entries(schema.properties)) shape[key] = fromSchema(child, depth + 1);
      return fc.record(shape, { requiredKeys: [...required].filter((k) => k in shape) });
    }
    case 'array':
      return fc.array(fromSchema(schema.items ?? {}, depth + 1), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 5, 5),
      });
    case 'integer': {
      const min =
        schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : -1000);
      return fc.integer({ min: Math.max(min, -1e9), max: Math.min(schema.maximum ?? 1000, 1e9) });
    }
    case 'number': {
      // In cents, within fast-check's 32-bit integer range.
      const min = Math.round((schema.minimum ?? schema.exclusiveMinimum ?? 0) * 100);
      return fc
        .integer({ min, max: Math.round(Math.min(schema.maximum ?? 1e6, 1e6) * 100) })
        .map((c) => c / 100);
    }
    case 'boolean':
      return fc.boolean();
    case 'string':
      if (schema.format === 'uuid') return fc.uuid();
      if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 80) });
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
);

describe('fuzzing driven by /openapi.json', () => {
  it('the document lists the operations this test exercises', () => {
    expect(operations.map((o) => `${o.method} ${o.path}`)).toEqual(
      expect.arrayContaining([
        'POST /orders',
        'GET /orders',
        'GET /orders/{id}',
        'PATCH /orders/{id}',
        'POST /orders/{id}/cancel',
      ]),
    );
  });

  // A fresh order per operation, so that some generated ids hit a real row in its first status.
  const freshOrder = async () => {
    const res = await app.request('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(SEED_ORDER),
    });
    return ((await res.json()) as { id: string }).id;
  };

  for (const { path, method, op } of operations.filter(
    (o) => !['/docs', '/openapi.json', '/metrics'].includes(o.path),
  )) {
    it(`${method} ${path}: every generated request gets a documented answer, never a 5xx`, async () => {
      const id = await freshOrder();
      const params = op.parameters ?? [];
      const bodySchema = op.requestBody?.content['application/json']?.schema;
      const request = fc.record({
        path: fc.record(
          Object.fromEntries(
            params
              .filter((p) => p.in === 'path')
              .map((p) => [p.name, fc.oneof(fc.constant(id), fromSchema(p.schema))]),
          ),
        ),
        query: fc.record(
          Object.fromEntries(
            params.filter((p) => p.in === 'query').map((p) => [p.name, fromSchema(p.schema)]),
          ),
          { requiredKeys: [] },
        ),
        body: bodySchema ? fromSchema(bodySchema) : fc.constant(undefined),
      });
      const documented = Object.keys(op.responses).map(Number);
      const seen = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          let url = path;
          // A URL carries UTF-8: a lone surrogate cannot be sent, so it goes as U+FFFD, as a client would.
          for (const [name, value] of Object.entries(r.path))
            url = url.replace(`{${name}}`, encodeURIComponent(str(value).toWellFormed()));
          const query = new URLSearchParams(Object.entries(r.query).map(([k, v]) => [k, str(v)]));
          if ([...query].length) url += `?${query}`;
          const res = await app.request(url, {
            method,
            ...(r.body !== undefined
              ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body) }
              : {}),
          });
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          expect(res.status, `${method} ${url} ${JSON.stringify(r.body)?.slice(0, 200)}`).toBeLessThan(500);
          // 404 for a path that does not match a route after encoding is the router's, and documented as such.
          expect([...documented, 404], `${method} ${url}`).toContain(res.status);
          if (res.status >= 400) {
            expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
            const problem = (await res.json()) as { status: number; code: string };
            expect(problem.status).toBe(res.status);
            expect(typeof problem.code).toBe('string');
          } else {
            await res.arrayBuffer();
          }
        }),
        { numRuns: 150 },
      );
      console.info(`${method} ${path}: ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
      // Both sides were exercised: some requests were accepted, some refused.
      if (bodySchema || params.length) {
        expect([...seen.keys()].some((s) => s < 300)).toBe(true);
        expect([...seen.keys()].some((s) => s >= 400)).toBe(true);
      }
    });
  }

  it('the app is healthy afterwards', async () => {
    expect((await app.request('/health')).status).toBe(200);
  });
});
