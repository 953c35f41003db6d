/**
 * Runs `listener` once when `signal` aborts (at once if it already has) and returns a function that
 * unhooks it. Connectors hold a signal for as long as a stream lives, so the listener must be
 * removable or every finished read would leave one behind on a long-lived signal.
 */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  if (signal.aborted) {
    listener();
    return () => {};
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
