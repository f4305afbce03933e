import { createTestDatabase, type TestDatabase } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ORDER_STATUSES } from '../src/index.js';

// The migration's CHECK was written by hand (an applied migration is never edited), so this test is
// what keeps it and the one list in @orders/events the same.
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ poolSize: 1 });
});
afterAll(async () => {
  await t?.drop();
});

it('the orders.status CHECK constraint allows exactly ORDER_STATUSES, in order', async () => {
  const { rows } = await sql<{ def: string }>`
    SELECT pg_get_constraintdef(c.oid) AS def
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
     WHERE c.conrelid = 'orders'::regclass AND c.contype = 'c' AND a.attname = 'status'`.execute(t.db);
  expect(rows).toHaveLength(1);
  const def = rows[0]?.def ?? '';
  // pg_get_constraintdef renders `status IN (...)` as `status = ANY (ARRAY['draft'::text, ...])`.
  expect(def).toMatch(/^CHECK \(\(status = ANY \(ARRAY\[.*\]\)\)\)$/);
  const allowed = [...def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]);
  expect(allowed).toEqual([...ORDER_STATUSES]);
});
