import { describe, expect, it } from 'vitest';
import { namedStatement } from './named-statement.js';

interface P {
  readonly id: string;
  readonly sku: string;
  readonly qty: number;
}

describe('namedStatement', () => {
  it('numbers names by first use, reuses the number of a name used again, and orders the values by it', () => {
    const s = namedStatement<P>('t', (db, p) =>
      db
        .selectFrom('order_items')
        .select('id')
        .where('qty', '=', p('qty'))
        .where('order_id', '=', p('id'))
        .where('sku', '=', p('sku'))
        .where('id', '=', p('id')),
    );
    expect(s.text).toBe(
      'select "id" from "order_items" where "qty" = $1 and "order_id" = $2 and "sku" = $3 and "id" = $2',
    );
    expect(s.names).toEqual(['qty', 'id', 'sku']);
    expect(s.values({ id: 'i', sku: 's', qty: 3 })).toEqual([3, 'i', 's']);
  });

  it('refuses a constant value: every parameter must have a name', () => {
    expect(() =>
      namedStatement<P>('t', (db, p) =>
        db.selectFrom('order_items').select('id').where('sku', '=', p('sku')).where('qty', '=', 1),
      ),
    ).toThrow(/named values only, got the constant 1/);
  });
});
