import { describe, expect, it } from 'vitest';
import { scopesOf } from './scopes.js';

describe('scopesOf', () => {
  it('reads scope (space separated) and scp (array or string), and both together', () => {
    expect([...scopesOf({ scope: 'orders:read  orders:write' })]).toEqual(['orders:read', 'orders:write']);
    expect([...scopesOf({ scp: ['orders:read', 42, ''] })]).toEqual(['orders:read']);
    expect([...scopesOf({ scp: 'a b' })]).toEqual(['a', 'b']);
    expect([...scopesOf({ scope: 'a', scp: ['b'] })]).toEqual(['a', 'b']);
  });

  it('grants nothing for missing or odd claims', () => {
    expect(scopesOf({}).size).toBe(0);
    expect(scopesOf({ scope: { read: true } }).size).toBe(0);
  });
});
