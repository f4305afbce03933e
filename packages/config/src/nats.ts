import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { booleanFlag, ConfigError, streamName } from './parsers.js';

/** How to reach NATS: shared by the relay and every consumer service. */
export const natsShape = {
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_STREAM: streamName,
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_NKEY_SEED: z
    .string()
    .regex(/^SU[A-Z2-7]+$/, 'must be a user nkey seed (SU...)')
    .optional(),
  NATS_NKEY_SEED_FILE: z.string().min(1).optional(),
  NATS_TLS: booleanFlag.optional(),
  NATS_TLS_CA_FILE: z.string().min(1).optional(),
  NATS_TLS_CERT_FILE: z.string().min(1).optional(),
  NATS_TLS_KEY_FILE: z.string().min(1).optional(),
};

export type NatsVars = z.infer<z.ZodObject<typeof natsShape>>;

/** The checks across NATS variables, for a schema's superRefine. */
export function checkNats(v: NatsVars, ctx: z.RefinementCtx): void {
  if (v.NATS_USER !== undefined && v.NATS_PASSWORD === undefined) {
    ctx.addIssue({ code: 'custom', path: ['NATS_PASSWORD'], message: 'is required when NATS_USER is set' });
  }
  if ((v.NATS_TLS_CERT_FILE === undefined) !== (v.NATS_TLS_KEY_FILE === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [v.NATS_TLS_CERT_FILE === undefined ? 'NATS_TLS_CERT_FILE' : 'NATS_TLS_KEY_FILE'],
      message: 'NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together (a client certificate and its key)',
    });
  }
  if (v.NATS_NKEY_SEED !== undefined && v.NATS_NKEY_SEED_FILE !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['NATS_NKEY_SEED_FILE'],
      message: 'set NATS_NKEY_SEED or NATS_NKEY_SEED_FILE, not both',
    });
  }
}

/** How a process connects to NATS (the relay, a consumer): servers, auth, TLS. Secrets never logged. */
export function resolveNats(e: NatsVars) {
  return {
    url: e.NATS_URL,
    ...(e.NATS_USER !== undefined ? { user: e.NATS_USER } : {}),
    ...(e.NATS_PASSWORD !== undefined ? { password: e.NATS_PASSWORD } : {}),
    ...(e.NATS_TOKEN !== undefined ? { token: e.NATS_TOKEN } : {}),
    ...nkey(e.NATS_NKEY_SEED, e.NATS_NKEY_SEED_FILE),
    ...(e.NATS_TLS || e.NATS_TLS_CA_FILE || e.NATS_TLS_CERT_FILE
      ? {
          /** TLS to NATS: required when set; a CA for a private one; a client certificate for mutual TLS. */
          tls: Object.freeze({
            ...(e.NATS_TLS_CA_FILE ? { caFile: e.NATS_TLS_CA_FILE } : {}),
            ...(e.NATS_TLS_CERT_FILE ? { certFile: e.NATS_TLS_CERT_FILE } : {}),
            ...(e.NATS_TLS_KEY_FILE ? { keyFile: e.NATS_TLS_KEY_FILE } : {}),
          }),
        }
      : {}),
  };
}

export type NatsConnectionConfig = ReturnType<typeof resolveNats>;

/** The nkey seed, from the variable or read from the file (a missing or malformed file is a ConfigError). */
export function nkey(
  seed: string | undefined,
  file: string | undefined,
): {
  /** A user nkey seed (from NATS_NKEY_SEED or the file NATS_NKEY_SEED_FILE names). */
  nkeySeed?: string;
} {
  if (seed !== undefined) return { nkeySeed: seed };
  if (file === undefined) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([
      `NATS_NKEY_SEED_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
  if (!/^SU[A-Z2-7]+$/.test(text))
    throw new ConfigError([`NATS_NKEY_SEED_FILE: ${file} does not hold a user nkey seed (SU...)`]);
  return { nkeySeed: text };
}
