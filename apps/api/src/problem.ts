import { z } from '@hono/zod-openapi';

/**
 * Every error response is an RFC 9457 problem document (packages/http-problem builds them) with this
 * shape, as the OpenAPI document describes it. `code` is a stable, machine-readable name; `detail` is
 * for humans; `errors` lists each failed field on a 422.
 */
export const problemSchema = z
  .object({
    type: z.string().openapi({ example: 'about:blank' }),
    title: z.string().openapi({ example: 'Unprocessable Content' }),
    status: z.number().int().openapi({ example: 422 }),
    code: z.string().openapi({ example: 'validation_failed' }),
    detail: z.string().openapi({ example: 'items: must contain at least one item' }),
    instance: z.string().optional().openapi({ example: '/orders' }),
    request_id: z.string().optional(),
    current_status: z
      .string()
      .optional()
      .openapi({ description: 'On 409 invalid_transition: the order status now.', example: 'shipped' }),
    allowed_next: z
      .array(z.string())
      .optional()
      .openapi({
        description: 'On 409 invalid_transition: the statuses it may move to (empty when final).',
        example: ['completed'],
      }),
    errors: z
      .array(
        z.object({
          field: z.string().openapi({ example: 'items.0.price' }),
          pointer: z.string().openapi({ example: '/items/0/price' }),
          message: z.string().openapi({ example: 'must have at most two decimal places' }),
        }),
      )
      .optional(),
  })
  .openapi('Problem');
/** Reusable OpenAPI response entries, so every route documents its errors the same way. */
export function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: problemSchema } } } as const;
}
