export { loadConfigOrExit } from './config.js';
export { type ShutdownOptions, shutDownOnAbort } from './shutdown.js';
export { stopOnSignals } from './signals.js';
