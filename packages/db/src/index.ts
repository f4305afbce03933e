export { createDatabaseIfMissing } from './create-database.js';
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
export { type DeleteInBatchesOptions, deleteInBatches } from './delete-in-batches.js';
export { runMigrateCommand } from './migrate-command.js';
export {
  DEFAULT_MIGRATIONS_DIR,
  type MigrateOptions,
  type MigrateResult,
  MigrationError,
  type MigrationSource,
  migrateToLatest,
  OUTBOX_MIGRATIONS,
  readMigrationFiles,
} from './migrator.js';
export {
  type IdempotentRequest,
  insertOrderWithEvent,
  insertOrderWithEventIdempotent,
  type StoredIdempotencyKey,
} from './order-create.js';
export {
  changeOrderStatus,
  findOrder,
  insertOrder,
  type ListOrdersQuery,
  listOrders,
  type NewOrder,
  type OrderCursor,
  type OrderItemRow,
  type OrderRow,
  type OrderWithItems,
  pruneIdempotencyKeys,
  type StatusChange,
} from './orders.js';
export { enqueueOutboxEvent, type NewOutboxEvent, outboxValues } from './outbox.js';
export {
  checkpointReplay,
  countReplay,
  findUnfinishedReplay,
  nextReplayRows,
  type OutboxBacklog,
  type OutboxStatus,
  outboxBacklog,
  outboxPartitions,
  outboxStatus,
  type PartitionStatus,
  pruneCursorRecords,
  pruneOutbox,
  pruneOutboxBatch,
  type ReplayCheckpoint,
  type ReplayRequest,
  type ReplayRow,
  requeueDeadRows,
  startReplay,
} from './outbox-admin.js';
export {
  LOG_START,
  type LogEvent,
  type LogPosition,
  type PartitionRead,
  type PartitionReadRequest,
  readOutboxLog,
} from './outbox-log.js';
export {
  type CursorWrite,
  claimPartitions,
  clearOutboxFailures,
  type HeldPartition,
  type PartitionClaim,
  RELAY_PRESENCE_LOCK,
  type RowFailure,
  recordOutboxFailures,
  releasePartitions,
  writeCursors,
} from './outbox-partitions.js';
export {
  type Database,
  ORDER_STATUSES,
  type OrderItemsTable,
  type OrderStatus,
  type OrdersTable,
  type OutboxTable,
} from './schema.js';
