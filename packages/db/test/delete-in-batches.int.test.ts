import { createEmptyTestDatabase, type TestDatabaseOf } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteInBatches } from '../src/index.js';

// The retention loop of the outbox, the inbox and the idempotency keys, on a table of its own: each
// batch is a DELETE shaped as theirs (LIMIT, SKIP LOCKED), so a short batch means what it means there.

interface Scratch {
  rows: { id: number };
}

let t: TestDatabaseOf<Scratch>;
beforeAll(async () => {
  t = await createEmptyTestDatabase<Scratch>({ prefix: 'db_batches_test' });
  await sql`CREATE TABLE rows (id int PRIMARY KEY)`.execute(t.db);
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  await sql`TRUNCATE rows`.execute(t.db);
});

async function insertRows(n: number): Promise<void> {
  await sql`INSERT INTO rows SELECT generate_series(1, ${n}::int)`.execute(t.db);
}

async function left(): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM rows`.execute(t.db);
  return rows[0]?.n ?? -1;
}

/** One batch: deletes up to `size` rows nobody else holds, records what it deleted. */
function batchOf(size: number, batches: number[]) {
  return async () => {
    const result = await sql`
      DELETE FROM rows WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM rows ORDER BY id LIMIT ${size} FOR UPDATE SKIP LOCKED))`.execute(t.db);
    const deleted = Number(result.numAffectedRows ?? 0);
    batches.push(deleted);
    return deleted;
  };
}

describe('deleteInBatches', () => {
  it('goes on while batches are full and stops after the first short one', async () => {
    await insertRows(7);
    const batches: number[] = [];
    const reported: [number, number][] = [];
    const total = await deleteInBatches(batchOf(3, batches), 3, {
      onBatch: (deleted, sum) => reported.push([deleted, sum]),
    });
    expect(total).toBe(7);
    expect(batches).toEqual([3, 3, 1]);
    expect(reported).toEqual([
      [3, 3],
      [3, 6],
      [1, 7],
    ]);
    expect(await left()).toBe(0);
  });

  it('needs an empty batch to know a table that divides into full batches is done', async () => {
    await insertRows(6);
    const batches: number[] = [];
    expect(await deleteInBatches(batchOf(3, batches), 3)).toBe(6);
    expect(batches).toEqual([3, 3, 0]);
  });

  it('does not ask again after a short batch that left rows another session holds', async () => {
    await insertRows(5);
    const batches: number[] = [];
    const total = await t.db.transaction().execute(async (trx) => {
      await sql`SELECT id FROM rows WHERE id > 3 FOR UPDATE`.execute(trx);
      return deleteInBatches(batchOf(2, batches), 2);
    });
    // Looping until nothing is left would spin on the two locked rows until the lock went.
    expect(total).toBe(3);
    expect(batches).toEqual([2, 1]);
    expect(await left()).toBe(2);
  });

  it('starts no batch once the signal aborts and cuts the pause short, returning what it deleted', async () => {
    await insertRows(10);
    const stop = new AbortController();
    const batches: number[] = [];
    const total = await deleteInBatches(batchOf(2, batches), 2, {
      signal: stop.signal,
      // Longer than the test's timeout: only the abort can end the pause in time.
      pauseMs: 60_000,
      onBatch: () => stop.abort(),
    });
    expect(total).toBe(2);
    expect(batches).toEqual([2]);
    expect(await left()).toBe(8);
  });

  it('refuses a batch size below 1, which no batch could fall short of', async () => {
    const batches: number[] = [];
    await expect(deleteInBatches(batchOf(0, batches), 0)).rejects.toThrow(RangeError);
    expect(batches).toEqual([]);
  });
});
