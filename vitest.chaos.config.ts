import { defineConfig } from 'vitest/config';

// `pnpm test:chaos`: failures users actually hit, with real processes on loopback (a JetStream cluster
// losing its leader, PostgreSQL restarting, a stalled network between relay and NATS, a soak). Slower
// than the main suite and heavier on the machine, so its files run one at a time.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['test/chaos/**/*.chaos.test.ts'],
    globalSetup: ['packages/testkit/src/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    reporters: process.env['CI']
      ? ['default', ['json', { outputFile: '.vitest-chaos-results.json' }]]
      : ['default'],
  },
});
