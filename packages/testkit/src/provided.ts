// What globalSetup hands each test file through vitest's provide/inject.
declare module 'vitest' {
  export interface ProvidedContext {
    /** Maintenance database URL of the run's PostgreSQL server. */
    testkitPgAdminUrl: string;
    /** The migrated template each test file clones. */
    testkitPgTemplate: string;
  }
}

export {};
