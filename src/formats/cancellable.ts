/**
 * Ties a stream to an attempt's signal: on abort it fails with `cancelled`, which stops whatever
 * feeds it. The listener goes when the stream closes, so a long-lived signal does not collect them.
 */
import type { Readable } from 'node:stream';
import { cancelled } from './format-errors.ts';

export function cancellable<S extends Readable>(stream: S, signal: AbortSignal): S {
  const abort = (): void => {
    stream.destroy(cancelled());
  };
  if (signal.aborted) abort();
  else {
    signal.addEventListener('abort', abort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', abort));
  }
  return stream;
}
