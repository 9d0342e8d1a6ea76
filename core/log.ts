import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON-lines logger on stdout: `"level":"info"` (names, not pino's numbers), an ISO time,
 * and the pid once (pino's base; a line about another process names it `workerPid`).
 * ISOGATE_LOG_LEVEL overrides the config (tests set it to silent).
 */
export function createLogger(level: string): Logger {
  return pino({
    level: process.env.ISOGATE_LOG_LEVEL ?? level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
