export { createTestCertificates, type TestCertificates } from './certs.js';
export { contractEvent } from './contract.js';
export {
  createTestDatabase,
  createTestDatabaseFrom,
  type TestDatabase,
  type TestDatabaseOf,
} from './database.js';
export { type NatsCluster, type NatsServer, startNatsCluster, startNatsServer } from './nats.js';
export {
  freePort,
  isAddressInUse,
  type PortReservation,
  portRange,
  reservePort,
  startOnReservedPort,
  startOnReservedPorts,
} from './ports.js';
export {
  adminQuery,
  databaseUrl,
  findPostgres,
  type PostgresServer,
  uniqueDatabaseName,
} from './postgres.js';
export { REPO_ROOT, type ServiceProcess, startNodeProcess } from './process.js';
export { answersHttp, healthOk, type ServerProcess, startServerProcess } from './server-process.js';
