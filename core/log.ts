import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON-lines logger on stdout. ISOGATE_LOG_LEVEL overrides the config (tests set it to silent). */
export function createLogger(level: string): Logger {
  return pino({ level: process.env.ISOGATE_LOG_LEVEL ?? level, base: { pid: process.pid } });
}
