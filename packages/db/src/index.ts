export {
  type CreateDbOptions,
  createDb,
  createOutboxNotifier,
  type Db,
  isDatabaseUnavailable,
  type OutboxNotifier,
  pingDatabase,
  safeError,
} from './database.js';
export {
  DEFAULT_MIGRATIONS_DIR,
  type MigrateOptions,
  type MigrateResult,
  MigrationError,
  migrateToLatest,
  readMigrationFiles,
} from './migrator.js';
export {
  findOrder,
  insertOrder,
  insertOrderWithEvent,
  type ListOrdersQuery,
  listOrders,
  type NewOrder,
  type OrderCursor,
  type OrderItemRow,
  type OrderRow,
  type OrderWithItems,
  updateOrderStatus,
} from './orders.js';
export {
  type ClaimedEvent,
  claimOutboxBatch,
  enqueueOutboxEvent,
  markOutboxPublished,
  type NewOutboxEvent,
  outboxBacklog,
  outboxValues,
  type RowFailure,
  recordOutboxFailures,
  releaseOutboxClaims,
} from './outbox.js';
export {
  type Database,
  ORDER_STATUSES,
  type OrderItemsTable,
  type OrderStatus,
  type OrdersTable,
  type OutboxTable,
} from './schema.js';
