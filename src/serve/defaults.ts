/**
 * The serve options' defaults, apart from the server itself: the CLI's option table needs them at
 * start-up, and the server module (fastify, pino) is loaded only when `serve` runs.
 */
export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8501,
  maxBodyBytes: 32 * 1024 * 1024,
  maxBatchSize: 1024,
  timeoutMs: 30_000,
  maxQueue: 256,
  pollMs: 1000,
  settleMs: 200,
  logLevel: 'info',
} as const;
