import { ConfigError } from '@orders/config';

/**
 * Runs the process's configuration loaders; bad values print the one line (naming every bad
 * variable) that each loader's ConfigError holds and end the process with exit code 2, before
 * anything else starts. Anything else that goes wrong is thrown.
 */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(2);
  }
}
