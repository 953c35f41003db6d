/**
 * For the tests of sinks' direct reads (SinkWriter.stageDirect): a DirectRead over a buffer that
 * counts, fails and changes on demand, and a TCP proxy that cuts connections mid-request.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after } from 'node:test';
import { FerryError } from '../../src/common/errors.ts';
import type { DirectRead } from '../../src/tables/object-reads.ts';

export interface TestDirect extends DirectRead {
  /** Bytes given by read() and by reread(). */
  counted: { read: number; reread: number };
  /** keep() calls, and the releases of what they kept (each counted once). */
  kept: { taken: number; released: number };
}

/**
 * Direct reads over `data` opened as `size` bytes, in pieces of at most 1 MiB, each after a short
 * random wait so reads overlap and finish out of order. A read or reread fails once it would reach
 * `failAt`; unchanged() throws when `size` is not the data's length, as when a file grew or shrank.
 * With `keepable` it offers keep(), as the filesystem source does, and counts what is kept.
 */
export function directOf(
  data: Buffer,
  size: number,
  fail: { at?: number; in?: 'read' | 'reread' } = {},
  o: { keepable?: boolean } = {},
): TestDirect {
  const counted = { read: 0, reread: 0 };
  const kept = { taken: 0, released: 0 };
  const keep = (): (() => void) => {
    kept.taken++;
    let held = true;
    return () => {
      if (held) kept.released++;
      held = false;
    };
  };
  const reader =
    (kind: 'read' | 'reread') =>
    async (into: Buffer, offset: number, length: number, position: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
      const n = Math.min(length, 1024 * 1024, Math.max(0, data.length - position));
      if ((fail.in ?? 'read') === kind && position + n > (fail.at ?? Infinity))
        throw new FerryError('store_error', 'files "in": disk on fire (read)');
      data.copy(into, offset, position, position + n);
      counted[kind] += n;
      return n;
    };
  return {
    size,
    counted,
    kept,
    ...(o.keepable ? { keep } : {}),
    read: reader('read'),
    reread: reader('reread'),
    async unchanged() {
      if (data.length !== size)
        throw new FerryError('store_error', `files "in": f changed while it was read (read)`, {
          retryable: true,
        });
    },
  };
}

export interface Proxy {
  port: number;
  /** Connections accepted, and cut, so far. */
  connections: number;
  cuts: number;
}

/**
 * A TCP proxy in front of a server on `port`, closed after the file's tests; it cuts its first `cut`
 * connections once they have carried `after` bytes upwards.
 */
export async function startProxy(port: number, { cut = 0, after: limit = Infinity } = {}): Promise<Proxy> {
  const proxy: Proxy = { port: 0, connections: 0, cuts: 0 };
  const server = createServer((client) => {
    proxy.connections++;
    const upstream = connect(port, '127.0.0.1');
    const cutting = proxy.connections <= cut;
    let up = 0;
    client.on('data', (d: Buffer) => {
      up += d.length;
      if (cutting && up > limit) {
        if (!client.destroyed) proxy.cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  after(() => server.close());
  proxy.port = (server.address() as AddressInfo).port;
  return proxy;
}
