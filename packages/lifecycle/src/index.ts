export { Backoff, cappedDelay } from './backoff.js';
export { loadConfigOrExit } from './config.js';
export { type HousekeepingOptions, startHousekeeping } from './housekeeping.js';
export { type ShutdownOptions, shutDownOnAbort } from './shutdown.js';
export { stopOnSignals } from './signals.js';
export { sleep } from './sleep.js';
