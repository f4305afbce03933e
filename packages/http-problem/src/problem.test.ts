import { describe, expect, it } from 'vitest';
import { fieldErrors, problem } from './index.js';

describe('problem', () => {
  it('titles a status by its standard phrase, an unknown one Error, and keeps the members in order', () => {
    expect(JSON.stringify(problem(403, 'forbidden', 'no', { instance: '/x', errors: [] }))).toBe(
      '{"type":"about:blank","title":"Forbidden","status":403,"code":"forbidden","detail":"no","instance":"/x","errors":[]}',
    );
    expect(problem(401, 'unauthorized', 'no').title).toBe('Unauthorized');
    expect(problem(418, 'teapot', 'no').title).toBe('Error');
  });

  it('names a field by its path and a JSON pointer with ~ and / escaped', () => {
    expect(
      fieldErrors([
        { path: ['a/b', 0, 'c~d'], message: 'bad' },
        { path: [], message: 'worse' },
      ]),
    ).toEqual([
      { field: 'a/b.0.c~d', pointer: '/a~1b/0/c~0d', message: 'bad' },
      { field: '(body)', pointer: '/', message: 'worse' },
    ]);
  });
});
