/**
 * `ferry gateway show` and `ferry gateway top`: a gateway, its dispatcher (and why it has the role)
 * and every node in the seed's monitoring columns. `top` redraws it every 2 s: in a terminal, in
 * place, until q or Ctrl-C; without one (a pipe, a log), it prints each refresh after a timestamp
 * line, until SIGINT/SIGTERM or --count refreshes. A refresh that fails because the service is
 * unreachable is shown and retried; one the service refuses (no such gateway, a bad token) ends it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliContext } from './context.ts';
import { enc } from './api-client.ts';
import { printFields, printTable } from './output.ts';
import { nodeColumns, nodeRows } from './node-commands.ts';
import { FerryError } from '../common/errors.ts';

export interface GatewayDetail {
  name: string;
  status: string;
  statusHint: string;
  version: string | null;
  nodes: number;
  maxNodes: number | null;
  encryption: string;
  dispatcher: string | null;
  epoch: number;
  dispatcherSince: string | null;
  dispatcherReason: string;
  nodeList: Record<string, unknown>[];
}

export function fetchGateway(c: CliContext, name: string): Promise<GatewayDetail> {
  return c.api.get<GatewayDetail>(`/api/v1/gateways/${enc(name)}`);
}

export function printGateway(res: GatewayDetail, now = Date.now()): void {
  printFields([
    ['gateway', res.name],
    ['status', `${res.status} (${res.statusHint})`],
    ['version', res.version],
    [
      'dispatcher',
      res.dispatcher
        ? `${res.dispatcher} (epoch ${res.epoch} since ${res.dispatcherSince}: ${res.dispatcherReason})`
        : `none${res.dispatcherReason ? ` (${res.dispatcherReason})` : ''}`,
    ],
    ['nodes', `${res.nodes}${res.maxNodes ? ` of at most ${res.maxNodes}` : ''}`],
    ['encryption', `${res.encryption} (node-to-node)`],
  ]);
  process.stdout.write('\n');
  printTable(nodeRows(res.nodeList, now), nodeColumns);
}

/** Failures that another refresh would not mend. */
const FINAL: readonly string[] = ['not_found', 'unauthorized', 'forbidden', 'bad_request'];

export async function runTop(
  c: CliContext,
  name: string,
  o: { intervalMs: number; count: number | undefined },
): Promise<void> {
  const terminal = process.stdout.isTTY === true;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const keys = terminal && process.stdin.isTTY === true;
  const onKey = (d: Buffer): void => {
    // q, Q, or Ctrl-C (raw mode turns it into a byte instead of a signal).
    if (d.includes(0x71) || d.includes(0x51) || d.includes(0x03)) stop.abort();
  };
  if (keys) {
    process.stdin.setRawMode(true);
    process.stdin.on('data', onKey);
    process.stdin.resume();
  }
  try {
    for (let i = 0; !stop.signal.aborted; i++) {
      let frame: GatewayDetail | FerryError;
      try {
        frame = await fetchGateway(c, name);
      } catch (err) {
        if (!(err instanceof FerryError) || FINAL.includes(err.code)) throw err;
        frame = err;
      }
      const now = new Date();
      if (c.json) {
        process.stdout.write(
          `${JSON.stringify(frame instanceof FerryError ? { at: now.toISOString(), error: frame.message } : { at: now.toISOString(), ...frame })}\n`,
        );
      } else {
        const title = `ferry gateway top ${name}: every ${o.intervalMs / 1000} s${keys ? ', q to quit' : ''}, ${now.toISOString()}`;
        // In a terminal, the frame replaces the last one (cursor home, clear screen).
        process.stdout.write(terminal ? `\x1b[H\x1b[2J${title}\n\n` : `${i === 0 ? '' : '\n'}--- ${title}\n`);
        if (frame instanceof FerryError) process.stdout.write(`${frame.message}; retrying\n`);
        else printGateway(frame, now.getTime());
      }
      if (o.count !== undefined && i + 1 >= o.count) break;
      await sleep(o.intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (keys) {
      process.stdin.off('data', onKey);
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
  }
}
