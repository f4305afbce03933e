export { createTestCertificates, type TestCertificates } from './certs.js';
export { contractEvent } from './contract.js';
export {
  createEmptyTestDatabase,
  createTestDatabase,
  createTestDatabaseFrom,
  type TestDatabase,
  type TestDatabaseOf,
} from './database.js';
export {
  createSigningKey,
  hmacToken,
  type JwksServer,
  mintToken,
  startJwksServer,
  startTestIssuer,
  type TestClaims,
  type TestIssuer,
  type TestSigningKey,
  unsignedToken,
} from './jwks.js';
export { metricValue } from './metrics-text.js';
export { type NatsCluster, type NatsServer, startNatsCluster, startNatsServer } from './nats.js';
export { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp.js';
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
  LOCAL_POSTGRES_URL,
  type PostgresServer,
  uniqueDatabaseName,
} from './postgres.js';
export { REPO_ROOT, type ServiceProcess, startNodeProcess } from './process.js';
export {
  type PrometheusAlert,
  type PrometheusSample,
  type PrometheusServer,
  startPrometheus,
} from './prometheus.js';
export {
  answersHttp,
  healthOk,
  type ServerProcess,
  type ServiceOnPort,
  startApiProcess,
  startServerProcess,
  startServiceProcess,
} from './server-process.js';
export { createMigratedTemplate } from './template.js';
