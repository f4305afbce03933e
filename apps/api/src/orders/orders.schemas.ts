import { z } from '@hono/zod-openapi';
import { ORDER_STATUSES } from '@orders/db';
import { hasAtMostTwoDecimals } from '../money.js';

/** Largest price NUMERIC(12,2) holds. */
export const MAX_PRICE = 9_999_999_999.99;
export const MAX_QTY = 1_000_000;
/** Metadata nesting deeper than this is refused: nothing legitimate needs it, and it keeps JSON work bounded. */
export const MAX_METADATA_DEPTH = 32;

export interface OrderLimits {
  readonly itemsPerOrder: number;
  readonly metadataBytes: number;
}

// PostgreSQL's uuid type takes any 8-4-4-4-12 hex string, so the API does too (not only RFC versions).
const uuid = z.guid({ error: 'must be a UUID' });
const statusSchema = z.enum(ORDER_STATUSES).openapi('OrderStatus');

/** True for text PostgreSQL can store: no NUL, no lone UTF-16 surrogate. */
export function isStorableText(text: string): boolean {
  return text.isWellFormed() && !text.includes('\u0000');
}

/**
 * Walks a JSON value without recursion (a hostile body may nest thousands of levels): its depth, and
 * whether every key and string can be stored in jsonb.
 */
function inspectJson(value: unknown): { depth: number; storable: boolean } {
  let depth = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, level] = stack.pop() as [unknown, number];
    if (typeof v === 'string') {
      if (!isStorableText(v)) return { depth, storable: false };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (level > depth) depth = level;
    if (depth > MAX_METADATA_DEPTH) return { depth, storable: true };
    for (const [key, child] of Object.entries(v)) {
      if (!isStorableText(key)) return { depth, storable: false };
      stack.push([child, level + 1]);
    }
  }
  return { depth, storable: true };
}

/** Request and response schemas; the limits come from configuration, so the OpenAPI document shows them. */
export function orderSchemas(limits: OrderLimits) {
  const itemInput = z.object({
    sku: z
      .string({ error: 'must be a string' })
      .min(1, 'must not be empty')
      .max(64, 'must be at most 64 characters')
      .refine(
        // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
        (v) => isStorableText(v) && !/[\u0000-\u001f\u007f]/.test(v),
        'must not contain control characters',
      )
      .openapi({ example: 'WIDGET-001' }),
    qty: z
      .number({ error: 'must be a number' })
      .int('must be an integer')
      .positive('must be greater than 0')
      .max(MAX_QTY, `must be at most ${MAX_QTY}`)
      .openapi({ example: 2 }),
    price: z
      .number({ error: 'must be a number' })
      .nonnegative('must be >= 0')
      .max(MAX_PRICE, `must be at most ${MAX_PRICE}`)
      .refine(hasAtMostTwoDecimals, 'must have at most two decimal places')
      .openapi({ example: 19.99, description: 'Unit price, at most two decimals.' }),
  });

  const createOrder = z
    .object({
      customer_id: uuid.openapi({ example: '550e8400-e29b-41d4-a716-446655440000' }),
      items: z
        .array(itemInput, { error: 'must be an array of items' })
        .min(1, 'must contain at least one item')
        .max(limits.itemsPerOrder, `must contain at most ${limits.itemsPerOrder} items`),
      // Checked, not rebuilt: z.record copies an object key by key and silently drops a "__proto__" key.
      metadata: z
        .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
          error: 'must be a JSON object',
        })
        .default({})
        .superRefine((value, ctx) => {
          const { depth, storable } = inspectJson(value);
          if (depth > MAX_METADATA_DEPTH) {
            ctx.addIssue({ code: 'custom', message: `must nest at most ${MAX_METADATA_DEPTH} levels deep` });
            return;
          }
          if (!storable) {
            ctx.addIssue({
              code: 'custom',
              message: 'must not contain NUL characters or unpaired surrogates',
            });
            return;
          }
          const bytes = Buffer.byteLength(JSON.stringify(value));
          if (bytes > limits.metadataBytes) {
            ctx.addIssue({
              code: 'custom',
              message: `must be at most ${limits.metadataBytes} bytes as JSON`,
            });
          }
        })
        .openapi({
          type: 'object',
          additionalProperties: {},
          default: {},
          example: { source: 'web' },
          description: 'Free-form JSON object, stored as is.',
        }),
    })
    .openapi('CreateOrder');

  const orderItem = z
    .object({
      id: z.uuid(),
      sku: z.string(),
      qty: z.number().int(),
      price: z.number().openapi({ example: 19.99 }),
      created_at: z.iso.datetime(),
    })
    .openapi('OrderItem');

  const order = z
    .object({
      id: z.uuid(),
      customer_id: z.string().openapi({ format: 'uuid' }),
      status: statusSchema,
      total_amount: z.number().openapi({ example: 89.97 }),
      items: z.array(orderItem),
      created_at: z.iso.datetime(),
      updated_at: z.iso.datetime(),
      metadata: z.record(z.string(), z.unknown()),
    })
    .openapi('Order');

  const orderPage = z
    .object({
      orders: z.array(order),
      next_cursor: z
        .string()
        .nullable()
        .openapi({ description: 'Pass as `cursor` to get the next page; null on the last page.' }),
    })
    .openapi('OrderPage');

  const updateStatus = z.object({ status: statusSchema }).openapi('UpdateOrderStatus');

  const idParam = z.object({
    id: uuid.openapi({ param: { name: 'id', in: 'path' }, example: '123e4567-e89b-12d3-a456-426614174000' }),
  });

  const listQuery = z.object({
    limit: z.coerce
      .number({ error: 'must be a number' })
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(100, 'must be at most 100')
      .default(20)
      .openapi({ param: { name: 'limit', in: 'query' }, example: 20 }),
    cursor: z
      .string()
      .max(200)
      .optional()
      .openapi({
        param: { name: 'cursor', in: 'query' },
        description: '`next_cursor` of the previous page.',
      }),
    customer_id: uuid.optional().openapi({ param: { name: 'customer_id', in: 'query' } }),
    status: statusSchema.optional().openapi({ param: { name: 'status', in: 'query' } }),
  });

  // Documented here; parsed by the handler, so that a malformed key is a 400 rather than a 422.
  const idempotencyHeaders = z.object({
    'Idempotency-Key': z
      .string()
      .optional()
      .openapi({
        description:
          'Makes the create safe to retry: a Structured Field string of 1 to 255 printable ASCII characters ' +
          '("..."), or a bare token of letters, digits and ._:~+/=-. A UUID per logical request is a good key.',
        example: '"8e03978e-40d5-43e8-bc93-6894a57f9324"',
      }),
  });

  return { createOrder, order, orderPage, updateStatus, idParam, listQuery, idempotencyHeaders };
}
export type OrderSchemas = ReturnType<typeof orderSchemas>;
export type CreateOrderInput = z.infer<OrderSchemas['createOrder']>;
export type Order = z.infer<OrderSchemas['order']>;
