import { z } from 'zod';
import { booleanFlag, type Env, parse } from './parsers.js';

// Trace export: the OpenTelemetry SDK reads the standard OTEL_* variables itself. They are checked
// here too, so that a typo stops the process at start like any other bad variable, instead of the
// SDK logging a warning nobody reads and silently exporting nothing (or with the wrong protocol).
export const otlpEndpoint = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .optional();

export const otlpProtocol = z
  .enum(['grpc', 'http/protobuf', 'http/json'], { error: 'must be grpc, http/protobuf or http/json' })
  .optional();

export const tracingSchema = z
  .object({
    OTEL_SDK_DISABLED: booleanFlag.default(false),
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpEndpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
    OTEL_TRACES_EXPORTER: z
      .string()
      .regex(/^(otlp|console|none)(,(otlp|console|none))*$/, 'must be otlp, console or none')
      .optional(),
    OTEL_TRACES_SAMPLER: z
      .enum(
        [
          'always_on',
          'always_off',
          'traceidratio',
          'parentbased_always_on',
          'parentbased_always_off',
          'parentbased_traceidratio',
        ],
        { error: 'must be one of the spec samplers (e.g. parentbased_traceidratio)' },
      )
      .optional(),
    OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
    OTEL_SERVICE_NAME: z.string().min(1).optional(),
    OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
    OTEL_METRICS_EXPORTER: z.string().optional(),
    OTEL_LOGS_EXPORTER: z.string().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.OTEL_TRACES_SAMPLER_ARG !== undefined && !e.OTEL_TRACES_SAMPLER?.endsWith('traceidratio')) {
      ctx.addIssue({
        code: 'custom',
        path: ['OTEL_TRACES_SAMPLER_ARG'],
        message: 'only means something with OTEL_TRACES_SAMPLER=traceidratio or parentbased_traceidratio',
      });
    }
  })
  .transform((e) => {
    const endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? e.OTEL_EXPORTER_OTLP_ENDPOINT;
    const exporters = e.OTEL_TRACES_EXPORTER?.split(',') ?? ['otlp'];
    return Object.freeze({
      /**
       * True when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or ..._TRACES_ENDPOINT), unless
       * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. False: the SDK is never even loaded.
       */
      enabled: endpoint !== undefined && !e.OTEL_SDK_DISABLED && !exporters.every((x) => x === 'none'),
      /** True when OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names the service; else each process names itself. */
      serviceNameFromEnv:
        e.OTEL_SERVICE_NAME !== undefined || /(^|,)\s*service\.name=/.test(e.OTEL_RESOURCE_ATTRIBUTES ?? ''),
      /** OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER were set: the SDK exports those too (else Prometheus and pino do). */
      metricsExport: e.OTEL_METRICS_EXPORTER !== undefined,
      logsExport: e.OTEL_LOGS_EXPORTER !== undefined,
    });
  });

/** Whether and how the API and the relay export traces, from the standard OpenTelemetry variables. */
export type TracingConfig = z.output<typeof tracingSchema>;

/** Reads and validates the OpenTelemetry variables the processes honour. */
export function loadTracingConfig(env: Env = process.env): TracingConfig {
  return parse(tracingSchema, env);
}
