/** A repeat of the shutdown signal this soon after the first is the same request (see below). */
const REPEAT_MS = 1000;

/**
 * Resolves on the first SIGTERM or SIGINT. A later one exits at once (the default action), unless it
 * comes within a second of the first: Ctrl-C under `npm start` reaches Ferry twice, from the
 * terminal (to the whole process group) and forwarded by npm, and that is one request to drain.
 */
export function waitForShutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let firstAt: number | undefined;
    const on = (sig: NodeJS.Signals): void => {
      if (firstAt === undefined) {
        firstAt = Date.now();
        resolve(sig);
        return;
      }
      if (Date.now() - firstAt < REPEAT_MS) return;
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      process.kill(process.pid, sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}
