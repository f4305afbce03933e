// The environment of each process, validated: a file per process (api, relay, migrate, inventory,
// tracing), one per part they share (database, nats, auth, consumer), and the parsers.

export { type ApiConfig, loadApiConfig } from './api.js';
export type { AuthConfig } from './auth.js';
export type { ConsumerConfig } from './consumer.js';
export type { DatabaseConfig } from './database.js';
export { type InventoryConfig, loadInventoryConfig, loadInventoryMigrateConfig } from './inventory.js';
export { loadMigrateConfig, type MigrateConfig } from './migrate.js';
export type { NatsConnectionConfig } from './nats.js';
export { ConfigError, type Env, parseDuration, redactUrl } from './parsers.js';
export { loadRelayCliConfig, loadRelayConfig, type RelayConfig } from './relay.js';
export { loadTracingConfig, type TracingConfig } from './tracing.js';
