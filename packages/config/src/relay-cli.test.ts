import { describe, expect, it } from 'vitest';
import { loadRelayCliConfig, loadRelayConfig } from './index.js';

describe('loadRelayCliConfig', () => {
  it('is the relay configuration, logging at warn unless LOG_LEVEL is set', () => {
    expect(loadRelayConfig({}).logLevel).toBe('info');
    expect(loadRelayCliConfig({}).logLevel).toBe('warn');
    expect(loadRelayCliConfig({ LOG_LEVEL: '' }).logLevel).toBe('warn');
    expect(loadRelayCliConfig({ LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(loadRelayCliConfig({ RELAY_BATCH_SIZE: '7' }).batchSize).toBe(7);
    expect(() => loadRelayCliConfig({ LOG_LEVEL: 'loud' })).toThrow(/^invalid configuration: LOG_LEVEL:/);
  });
});
