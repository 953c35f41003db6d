/**
 * The node-to-node port (default 8060): HTTP, or HTTPS when the node has a TLS certificate. Every
 * /v1 request must be signed with the gateway's peer secret (protocol/peer.ts): a node takes work
 * only from nodes of its own gateway. /healthz and /metrics are open, read-only.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { FerryError, toFerryError, toProblem } from '../common/errors.ts';
import {
  PEER_HEADER_GATEWAY,
  PEER_HEADER_SIGNATURE,
  PEER_HEADER_TIME,
  verifyPeerSignature,
} from '../protocol/peer.ts';

const MAX_BODY = 16 * 1024 * 1024;

export interface PeerHandlers {
  /** Identity the caller must prove it shares; undefined until the node is registered. */
  identity(): { gatewayId: string; peerSecret: string } | undefined;
  routes: Record<string, (body: unknown) => Promise<unknown>>;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export interface PeerServerOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string; ca: string } | undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new FerryError('bad_request', 'request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startPeerServer(
  o: PeerServerOptions,
  h: PeerHandlers,
): Promise<{ server: Server; port: number }> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      try {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
        if (req.method === 'GET' && path === '/metrics') {
          const m = await h.metrics();
          return send(res, 200, m.body, m.contentType);
        }
        const body = await readBody(req);
        const id = h.identity();
        if (!id) throw new FerryError('unavailable', 'this node is not registered yet');
        const time = Number(req.headers[PEER_HEADER_TIME]);
        const signature = String(req.headers[PEER_HEADER_SIGNATURE] ?? '');
        if (
          req.headers[PEER_HEADER_GATEWAY] !== id.gatewayId ||
          !verifyPeerSignature(id.peerSecret, req.method ?? '', path, time, body, signature, Date.now())
        ) {
          throw new FerryError('unauthorized', 'request is not signed by a node of this gateway');
        }
        const route = h.routes[`${req.method} ${path}`];
        if (!route) throw new FerryError('not_found', `no route ${req.method} ${path}`);
        let parsed: unknown;
        try {
          parsed = body.length > 0 ? JSON.parse(body) : undefined;
        } catch {
          throw new FerryError('bad_request', 'body is not JSON');
        }
        send(res, 200, await route(parsed));
      } catch (err) {
        const fe = toFerryError(err);
        send(res, fe.httpStatus, toProblem(fe));
      }
    })();
  };
  const server = o.tls
    ? createHttpsServer(
        { cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key), ca: readFileSync(o.tls.ca) },
        handler,
      )
    : createHttpServer(handler);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new FerryError('conflict', `node-to-node port ${o.port} is in use on ${o.host}`, {
              hint: 'pick another --port',
            })
          : err,
      ),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : o.port };
}
