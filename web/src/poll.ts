/**
 * Live data: a page's loader runs at once and then every `everyMs` (2 s: issue 19's "at most every
 * 2 s"). The last good answer stays on screen with the error of a failed
 * refresh beside it, and `at` says when the shown data was read.
 */
import { useCallback, useEffect, useRef, useState } from 'react';

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  at: number | undefined;
  reload: () => void;
}

export const POLL_MS = 2000;

export function usePoll<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  everyMs: number | null = POLL_MS,
): Polled<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; at: number | undefined }>({
    data: undefined,
    error: undefined,
    at: undefined,
  });
  const loadRef = useRef(load);
  loadRef.current = load;
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    setState({ data: undefined, error: undefined, at: undefined });
  }, deps);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async (): Promise<void> => {
      try {
        const data = await loadRef.current();
        if (!stopped) setState({ data, error: undefined, at: Date.now() });
      } catch (error) {
        if (!stopped) setState((s) => ({ ...s, error }));
      }
      if (!stopped && everyMs !== null) timer = window.setTimeout(() => void run(), everyMs);
    };
    void run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [...deps, tick, everyMs]);

  return { ...state, reload };
}
