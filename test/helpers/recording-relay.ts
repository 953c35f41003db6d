/**
 * A TCP relay that keeps every byte it passes, both ways: put between two Ferry processes, it shows
 * exactly what an eavesdropper on that hop would see.
 */
import { createServer, connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface RecordingRelay {
  host: string;
  port: number;
  /** Every byte relayed so far, in both directions. */
  recorded(): Buffer;
  /** How many connections it has relayed. */
  connections: number;
}

/** Listens on `listen` (port 0: any free one) and relays each connection to `target`. */
export async function recordingRelay(
  t: Pick<TestContext, 'after'>,
  listen: { host: string; port: number },
  target: { host: string; port: number },
): Promise<RecordingRelay> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const relay: RecordingRelay = {
    host: listen.host,
    port: 0,
    recorded: () => Buffer.concat(chunks),
    connections: 0,
  };
  const server = createServer((inbound) => {
    relay.connections++;
    const outbound = connect(target.port, target.host);
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(from);
      from.on('data', (d: Buffer) => {
        chunks.push(Buffer.from(d));
        to.write(d);
      });
      from.on('end', () => to.end());
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address();
  relay.port = typeof address === 'object' && address ? address.port : listen.port;
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return relay;
}

/** A port free on 127.0.0.1 right now (for a process that must listen on a port known in advance). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}
