import { AuthError } from '@orders/auth';
import { describe, expect, it } from 'vitest';
import { type ErrorProblemOptions, fieldErrors, ProblemError, problem, problemForError } from './index.js';

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

describe('problemForError', () => {
  function recorder() {
    const logged: { level: string; obj: unknown; msg: unknown }[] = [];
    const logger = {
      warn: (obj: unknown, msg?: string) => logged.push({ level: 'warn', obj, msg }),
      error: (obj: unknown, msg?: string) => logged.push({ level: 'error', obj, msg }),
    } as ErrorProblemOptions['logger'];
    return { logger, logged };
  }
  const down = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5432'), { code: 'ECONNREFUSED' });
  const isDatabaseUnavailable = (err: unknown) => err === down;

  it('answers an AuthError with its challenge, and its Retry-After logged with the cause', () => {
    const { logger, logged } = recorder();
    expect(
      problemForError(new AuthError('missing_token', 'needs a token'), { logger, isDatabaseUnavailable }),
    ).toEqual({
      status: 401,
      code: 'missing_token',
      detail: 'needs a token',
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
    expect(logged).toEqual([]);
    const cause = new Error('jwks unreachable');
    const unavailable = new AuthError('auth_unavailable', 'keys unreachable', { cause });
    expect(problemForError(unavailable, { logger, isDatabaseUnavailable, requestId: 'r1' })).toEqual({
      status: 503,
      code: 'auth_unavailable',
      detail: 'keys unreachable',
      headers: { 'Retry-After': '5' },
    });
    expect(logged).toEqual([
      {
        level: 'warn',
        obj: { err: cause, request_id: 'r1' },
        msg: 'token not checked: issuer keys unreachable',
      },
    ]);
  });

  it("answers a ProblemError with its fields, extensions and Retry-After, before the service's own cases", () => {
    const { logger } = recorder();
    const errors = [{ field: 'a', pointer: '/a', message: 'bad' }];
    const err = new ProblemError(429, 'rate_limited', 'slow down', errors, {
      retryAfterSeconds: 7,
      extensions: { limit: 10 },
    });
    const classify = () => ({ status: 400, code: 'wrong', detail: 'classify ran', headers: {} });
    expect(problemForError(err, { logger, isDatabaseUnavailable, classify })).toEqual({
      status: 429,
      code: 'rate_limited',
      detail: 'slow down',
      errors,
      extensions: { limit: 10 },
      headers: { 'Retry-After': '7' },
    });
  });

  it("tries the service's own cases before the database check, and falls through when they decline", () => {
    const { logger } = recorder();
    const own = { status: 422, code: 'validation_failed', detail: 'cannot be stored', headers: {} };
    expect(problemForError(down, { logger, isDatabaseUnavailable, classify: () => own })).toBe(own);
    expect(problemForError(down, { logger, isDatabaseUnavailable, classify: () => undefined }).status).toBe(
      503,
    );
  });

  it('answers a database outage 503 with Retry-After and nothing of the error', () => {
    const { logger, logged } = recorder();
    expect(problemForError(down, { logger, isDatabaseUnavailable, requestId: 'r2' })).toEqual({
      status: 503,
      code: 'database_unavailable',
      detail: 'the database is unavailable; retry shortly',
      headers: { 'Retry-After': '5' },
    });
    expect(logged).toEqual([
      { level: 'warn', obj: { err: down, request_id: 'r2' }, msg: 'database unavailable' },
    ]);
  });

  it('answers anything else 500 without its message, quoting the request id when there is one', () => {
    const { logger, logged } = recorder();
    const bug = new Error('password=hunter2 at /srv/app.ts:12');
    const withId = problemForError(bug, { logger, isDatabaseUnavailable, requestId: 'r3' });
    expect(withId).toEqual({
      status: 500,
      code: 'internal_error',
      detail: 'an unexpected error occurred; quote request id r3 when reporting it',
      headers: {},
    });
    expect(problemForError(bug, { logger, isDatabaseUnavailable }).detail).toBe(
      'an unexpected error occurred',
    );
    expect(logged).toEqual([
      { level: 'error', obj: { err: bug, request_id: 'r3' }, msg: 'unhandled error' },
      { level: 'error', obj: { err: bug }, msg: 'unhandled error' },
    ]);
  });
});
