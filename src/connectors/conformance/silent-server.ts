/**
 * A local server that accepts connections and never says a word, for "the store does not answer"
 * checks: a client waits on it until its signal aborts or its timeout fires. `connected` settles once
 * the first client is in, so a check aborts only when the connection test is really waiting.
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';

export interface SilentServer {
  port: number;
  /** Resolves when the first connection is accepted. */
  connected: Promise<void>;
  /** Closes the server and every connection it accepted. */
  close(): Promise<void>;
}

export async function silentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted: () => void = () => {};
  const connected = new Promise<void>((resolve) => {
    accepted = resolve;
  });
  const server = createServer((socket) => {
    sockets.add(socket);
    // A client that gives up resets the connection; that is expected here.
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    accepted();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no port was bound');
  return {
    port: address.port,
    connected,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
