import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './index.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ name: 't', level: 'info', destination }) };
}

describe('createLogger', () => {
  it('redacts secrets and drops connection objects hung on errors', () => {
    const { lines, logger } = capture();
    const err = Object.assign(new Error('read ECONNRESET'), {
      code: 'ECONNRESET',
      client: { connectionParameters: { password: 'hunter2', user: 'app' } },
    });
    logger.warn(
      { err, password: 'hunter2', db: { password: 'hunter2' }, headers: { authorization: 'Bearer x' } },
      'boom',
    );
    const line = lines.join('');
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain('Bearer x');
    const parsed = JSON.parse(line);
    expect(parsed.err).toMatchObject({ message: 'read ECONNRESET', code: 'ECONNRESET' });
    expect(parsed.err.client).toBeUndefined();
    expect(parsed.level).toBe('warn');
  });
});
