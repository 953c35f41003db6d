/** One logger factory: JSON lines to stderr (pino), level from options. Secrets are redacted by path. */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level: string = 'info'): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['*.password', '*.key', '*.token', '*.peerSecret', '*.nodeToken', 'headers.authorization'],
        censor: '***',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
