import { describe, expect, it } from 'vitest';
import { ConfigError, loadApiConfig, loadInventoryConfig, redactUrl } from './index.js';

describe('loadApiConfig', () => {
  it('builds the database URL from the seed variables', () => {
    const c = loadApiConfig({
      DB_HOST: 'postgres',
      DB_PORT: '5433',
      POSTGRES_DB: 'pulse_erp',
      POSTGRES_USER: 'pulseadmin',
      POSTGRES_PASSWORD: 'p@ss:word/1',
      SERVICE_NAME: 'orders-service',
      SERVICE_PORT: '8001',
    });
    expect(c.database.url).toBe('postgres://pulseadmin:p%40ss%3Aword%2F1@postgres:5433/pulse_erp');
    expect(new URL(c.database.url).password).toBe('p%40ss%3Aword%2F1');
    expect(c.port).toBe(8001);
    expect(c.serviceName).toBe('orders-service');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('lets DATABASE_URL win over the parts', () => {
    const c = loadApiConfig({
      DATABASE_URL: 'postgresql://u@db.internal:6543/x',
      DB_HOST: 'ignored',
      POSTGRES_DB: 'ignored',
    });
    expect(c.database.url).toBe('postgresql://u@db.internal:6543/x');
  });

  it('has working defaults for a local machine', () => {
    const c = loadApiConfig({});
    expect(c.database.url).toBe('postgres://postgres@127.0.0.1:5432/orders');
    expect(c.port).toBe(8001);
  });

  it('treats empty values as unset', () => {
    expect(loadApiConfig({ SERVICE_PORT: '', DATABASE_URL: '' }).port).toBe(8001);
  });

  it('trusts no proxy by default; TRUST_PROXY_HOPS counts proxies (default 1) and needs TRUST_PROXY', () => {
    expect(loadApiConfig({}).rateLimit).toMatchObject({ trustProxy: false, trustProxyHops: 1 });
    expect(loadApiConfig({ TRUST_PROXY: 'true' }).rateLimit.trustProxyHops).toBe(1);
    expect(loadApiConfig({ TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '2' }).rateLimit.trustProxyHops).toBe(2);
    expect(() => loadApiConfig({ TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '0' })).toThrow(/TRUST_PROXY_HOPS/);
    expect(() => loadApiConfig({ TRUST_PROXY_HOPS: '2' })).toThrow(
      /TRUST_PROXY_HOPS: only applies with TRUST_PROXY=true/,
    );
  });

  it('names every bad variable in one error, without echoing values', () => {
    let error: unknown;
    try {
      loadApiConfig({
        SERVICE_PORT: '99999',
        DB_PORT: 'five',
        DATABASE_URL: 'mysql://secret-host/x',
        LOG_LEVEL: 'loud',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const variable of ['SERVICE_PORT', 'DB_PORT', 'DATABASE_URL', 'LOG_LEVEL'])
      expect(message).toContain(variable);
    expect(message).not.toContain('secret-host');
    expect((error as ConfigError).problems).toHaveLength(4);
  });
});

describe('loadInventoryConfig', () => {
  it('reads its own database from the INVENTORY_ variables, never the orders ones', () => {
    const c = loadInventoryConfig({
      DB_HOST: 'orders-db',
      POSTGRES_DB: 'orders',
      INVENTORY_DB_HOST: 'inv-db',
      INVENTORY_DB_PORT: '6543',
      INVENTORY_POSTGRES_USER: 'inv',
      INVENTORY_POSTGRES_PASSWORD: 'p@ss',
    });
    expect(c.database.url).toBe('postgres://inv:p%40ss@inv-db:6543/inventory');
    expect(c.port).toBe(8003);
    expect(c.eventsStream).toBe('inventory');
    expect(c.consumer).toMatchObject({
      name: 'inventory',
      stream: 'orders',
      filterSubject: 'orders.>',
      ackWaitMs: 10_000,
      maxDeliver: 5,
      inboxRetentionMs: 30 * 86_400_000,
    });
    expect(
      loadInventoryConfig({ INVENTORY_DATABASE_URL: 'postgres://u@h/x', INVENTORY_DB_HOST: 'no' }).database
        .url,
    ).toBe('postgres://u@h/x');
    expect(loadInventoryConfig({}).database.url).toBe('postgres://postgres@127.0.0.1:5432/inventory');
  });

  it('names every bad variable, the prefixed database ones included, in one error', () => {
    let error: unknown;
    try {
      loadInventoryConfig({
        INVENTORY_DB_PORT: 'x',
        INVENTORY_PORT: '0',
        CONSUMER_MAX_DELIVER: '0',
        INBOX_RETENTION: 'soon',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const v of ['INVENTORY_DB_PORT', 'INVENTORY_PORT', 'CONSUMER_MAX_DELIVER', 'INBOX_RETENTION']) {
      expect(message).toContain(`${v}:`);
    }
    // Consuming its own stream would feed the inventory its own events.
    expect(() => loadInventoryConfig({ INVENTORY_STREAM: 'orders' })).toThrow(
      /INVENTORY_STREAM: must differ from NATS_STREAM/,
    );
  });
});

describe('redactUrl', () => {
  it('hides the password', () => {
    expect(redactUrl('postgres://u:hunter2@h/db')).toBe('postgres://u:***@h/db');
    expect(redactUrl('not a url')).toBe('<unparseable url>');
  });
});
