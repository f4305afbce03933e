import { describe, expect, it } from 'vitest';
import { ConfigError, loadApiConfig, loadInventoryConfig, loadTracingConfig, redactUrl } from './index.js';

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

  it('switches authentication on with all three AUTH_* variables, off with none, and refuses a part', () => {
    expect(loadApiConfig({}).auth).toBeUndefined();
    const auth = {
      AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
      AUTH_ISSUER: 'https://idp.example/',
      AUTH_AUDIENCE: 'orders-api, orders-admin',
    };
    expect(loadApiConfig(auth).auth).toEqual({
      jwksUrl: auth.AUTH_JWKS_URL,
      issuer: auth.AUTH_ISSUER,
      audience: ['orders-api', 'orders-admin'],
      clockToleranceSeconds: 5,
    });
    expect(loadApiConfig({ ...auth, AUTH_CLOCK_TOLERANCE_S: '0' }).auth?.clockToleranceSeconds).toBe(0);
    expect(() => loadApiConfig({ ...auth, AUTH_CLOCK_TOLERANCE_S: '1h' })).toThrow(/AUTH_CLOCK_TOLERANCE_S/);
    expect(() => loadApiConfig({ ...auth, AUTH_JWKS_URL: 'file:///etc/keys' })).toThrow(/AUTH_JWKS_URL/);
    expect(() => loadApiConfig({ ...auth, AUTH_AUDIENCE: ' , ' })).toThrow(
      /AUTH_AUDIENCE: names no audience/,
    );
    let error: unknown;
    try {
      loadApiConfig({ AUTH_ISSUER: auth.AUTH_ISSUER });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems).toEqual([
      'AUTH_JWKS_URL: is required when AUTH_ISSUER is set (all three or none)',
      'AUTH_AUDIENCE: is required when AUTH_ISSUER is set (all three or none)',
    ]);
  });

  it('protects /metrics only with a METRICS_TOKEN of at least 16 characters, never echoed', () => {
    expect(loadApiConfig({}).metricsToken).toBeUndefined();
    expect(loadApiConfig({ METRICS_TOKEN: 'a-long-scrape-token' }).metricsToken).toBe('a-long-scrape-token');
    expect(() => loadApiConfig({ METRICS_TOKEN: 'short-secret' })).toThrow(
      /^invalid configuration: METRICS_TOKEN: must be at least 16 characters$/,
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

describe('loadTracingConfig', () => {
  it('is on only with an OTLP endpoint, and off again when the SDK or the trace exporter is disabled', () => {
    expect(loadTracingConfig({}).enabled).toBe(false);
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }).enabled).toBe(false);
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).enabled).toBe(true);
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c/v1/traces' }).enabled).toBe(
      true,
    );
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(loadTracingConfig({ ...on, OTEL_SDK_DISABLED: 'true' }).enabled).toBe(false);
    expect(loadTracingConfig({ ...on, OTEL_TRACES_EXPORTER: 'none' }).enabled).toBe(false);
  });

  it('says whether the environment names the service and asks for metrics or logs export', () => {
    expect(loadTracingConfig({})).toMatchObject({
      serviceNameFromEnv: false,
      metricsExport: false,
      logsExport: false,
    });
    expect(loadTracingConfig({ OTEL_SERVICE_NAME: 'shop' }).serviceNameFromEnv).toBe(true);
    expect(
      loadTracingConfig({ OTEL_RESOURCE_ATTRIBUTES: 'team=a,service.name=shop' }).serviceNameFromEnv,
    ).toBe(true);
    expect(loadTracingConfig({ OTEL_METRICS_EXPORTER: 'otlp', OTEL_LOGS_EXPORTER: 'otlp' })).toMatchObject({
      metricsExport: true,
      logsExport: true,
    });
  });

  it('refuses bad values in one error naming every variable', () => {
    try {
      loadTracingConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http',
        OTEL_TRACES_SAMPLER: 'sometimes',
        OTEL_TRACES_EXPORTER: 'jaeger',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as ConfigError).message;
      for (const v of [
        'OTEL_EXPORTER_OTLP_ENDPOINT',
        'OTEL_EXPORTER_OTLP_PROTOCOL',
        'OTEL_TRACES_SAMPLER',
        'OTEL_TRACES_EXPORTER',
      ]) {
        expect(message).toContain(v);
      }
    }
    expect(() => loadTracingConfig({ OTEL_TRACES_SAMPLER_ARG: '0.1' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(
      loadTracingConfig({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })
        .enabled,
    ).toBe(false);
  });
});
