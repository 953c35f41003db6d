/**
 * The node-to-node port (default 8060): one listening port that takes both plain HTTP and mutual TLS.
 * The first byte of each connection says which (0x16 opens a TLS handshake): the socket goes to the
 * plain or the TLS server. The TLS server requests and verifies the client's certificate against
 * the node's CA bundle (the gateway CA, or --tls-ca). So both are taken while a gateway changes its
 * encryption mode (protocol/encryption.ts), and once the node runs TLS only, a plain request is
 * refused, with a message that says so. Every
 * /v1 request must be signed by a current member of the node's gateway (node/peer-auth.ts), and that
 * is decided from its headers alone: an unsigned or foreign request is refused, and its connection
 * closed, before a byte of its body is read. Then the body is read up to its route's own limit
 * (refused at once by Content-Length when larger) and must hash to the signed digest. Slow clients
 * are cut: headers, whole requests and idle connections have timeouts. /healthz and /metrics are
 * open, read-only, and take no body. /admin/ requests (an operator setting a credential on this node)
 * carry a grant signed by the service instead (node/grant-auth.ts), also checked before the body;
 * a grant route (POST /admin/credentials, exactly) is the only request the TLS side takes without a
 * client certificate (an operator's CLI has none): every other request over TLS, a malformed one
 * included, must come with a certificate the node's CA bundle verifies, or ends unanswered.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { answerClientError } from '../common/client-error.ts';
import { FerryError, toFerryError, toProblem } from '../common/errors.ts';
import { bodySha256 } from '../protocol/peer.ts';
import type { TLSSocket } from 'node:tls';
import type { PeerAuth, PeerCaller } from './peer-auth.ts';
import type { GrantAuth, GrantCaller } from './grant-auth.ts';

/** All of a request's headers must arrive within this. */
export const PEER_HEADERS_TIMEOUT_MS = 10_000;
/** A whole request (headers and body) must arrive within this. */
export const PEER_REQUEST_TIMEOUT_MS = 30_000;
/** An idle keep-alive connection is closed after this. */
export const PEER_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A connection on which nothing moves for this long is closed. */
export const PEER_SOCKET_IDLE_MS = 30_000;
/** A request refused with its body unread: its connection is closed this long after the answer. */
const LINGER_MS = 1_000;

/**
 * A route: called by a member of the gateway (/v1/...), or, under /admin/, by an operator with a
 * grant from the service (node/grant-auth.ts).
 */
export type PeerRoute =
  | {
      auth?: 'peer';
      /** The largest body this route's messages need; 0 = none. */
      maxBody: number;
      handle(body: unknown, caller: PeerCaller): Promise<unknown>;
    }
  | { auth: 'grant'; maxBody: number; handle(body: unknown, caller: GrantCaller): Promise<unknown> };

export interface PeerHandlers {
  auth: PeerAuth;
  /** Checks /admin/ requests; without it they are refused. */
  grants?: GrantAuth;
  routes: Record<string, PeerRoute>;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Whether plain HTTP is still taken (false once the node runs TLS only). */
  acceptsPlain(): boolean;
}

export interface PeerServerOptions {
  host: string;
  port: number;
}

/** What the TLS side serves and trusts (PEM). */
export interface PeerTlsMaterial {
  key: Buffer;
  cert: Buffer;
  /** The CA bundle a peer's certificate must chain to. */
  ca: Buffer;
}

export interface PeerServer {
  port: number;
  /** Serve TLS with this material from the next handshake on (a rotated certificate: live). */
  setTls(material: PeerTlsMaterial): void;
  /** Stops listening, closes idle connections, and resolves once every connection has ended. */
  close(): Promise<void>;
}

/** A connection that sends nothing within this long is closed (before it reaches either server). */
const FIRST_BYTE_TIMEOUT_MS = PEER_HEADERS_TIMEOUT_MS;
/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;

function tooLarge(limit: number): FerryError {
  return new FerryError(
    'bad_request',
    limit === 0 ? 'this route takes no request body' : `request body larger than ${limit} bytes`,
  );
}

/** Reads the body, failing as soon as it passes `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        reject(tooLarge(limit));
        req.pause();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new FerryError('bad_request', 'request aborted')));
  });
}

/**
 * The connection of a request refused before its body was read is closed after the answer. Node
 * would destroy it as soon as the answer is written; with the client still sending, that resets the
 * connection and the client's kernel may drop the answer unread. So: stop reading (the client's
 * sends stall once the kernel's buffers are full: nothing more is read, parsed or kept), half-close,
 * and destroy a moment later.
 */
function lingerClose(socket: Socket): void {
  socket.destroySoon = function destroySoon(this: Socket): void {
    // The HTTP parser reads the socket's handle directly: stop it there (socket.pause() would not).
    (this as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
    this.end();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/json',
  close = false,
): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
  };
  // A body left unread is not drained: the connection is closed after the answer.
  if (close) {
    headers.connection = 'close';
    lingerClose(res.req.socket);
  }
  res.writeHead(status, headers);
  res.end(text);
}

function declaredLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : Number.POSITIVE_INFINITY;
}

/** Does the request carry a body (declared, or chunked)? */
function hasBody(req: IncomingMessage): boolean {
  const len = declaredLength(req);
  return (len !== undefined && len > 0) || req.headers['transfer-encoding'] !== undefined;
}

export async function startPeerServer(o: PeerServerOptions, h: PeerHandlers): Promise<PeerServer> {
  const handler =
    (secure: boolean) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      void (async () => {
        let bodyRead = false;
        try {
          const method = req.method ?? '';
          const path = (req.url ?? '/').split('?')[0] ?? '/';
          // Over TLS, anything but an operator's call of a grant route (which has its grant) needs a
          // client certificate the node's CA bundle verifies: without one, the connection ends
          // unanswered. That route exactly: not any path under /admin/ (`/admin/../v1/ping`).
          if (
            secure &&
            !(req.socket as TLSSocket).authorized &&
            h.routes[`${method} ${path}`]?.auth !== 'grant'
          ) {
            req.socket.destroy();
            return;
          }
          if (!secure && !h.acceptsPlain()) {
            throw new FerryError(
              'forbidden',
              "this node serves node-to-node traffic over TLS only (the gateway's encryption mode is tls): plain HTTP is refused",
              { hint: 'use https:// with a certificate from the gateway CA (or the CA of --tls-ca)' },
            );
          }
          if (method === 'GET' && (path === '/healthz' || path === '/metrics')) {
            if (hasBody(req)) throw tooLarge(0);
            if (path === '/healthz') return send(res, 200, { status: 'ok' });
            const m = await h.metrics();
            return send(res, 200, m.body, m.contentType);
          }
          // Who is calling, from the headers alone: nothing of the body is read for a stranger.
          const admin = path.startsWith('/admin/');
          let caller: PeerCaller | GrantCaller;
          if (admin) {
            if (!h.grants) throw new FerryError('not_found', `no route ${method} ${path}`);
            caller = h.grants.verify(req.headers, Date.now());
          } else {
            caller = h.auth.verify(method, path, req.headers, Date.now());
          }
          const route = h.routes[`${method} ${path}`];
          if (!route || (route.auth === 'grant') !== admin)
            throw new FerryError('not_found', `no route ${method} ${path}`);
          const declared = declaredLength(req);
          if (declared !== undefined && declared > route.maxBody) throw tooLarge(route.maxBody);
          if (route.maxBody === 0 && hasBody(req)) throw tooLarge(0);
          // A client that waits for "100 Continue" gets it only now, once its headers passed.
          if (route.maxBody > 0 && /100-continue/i.test(String(req.headers.expect ?? '')))
            res.writeContinue();
          const body = route.maxBody === 0 ? Buffer.alloc(0) : await readBody(req, route.maxBody);
          bodyRead = true;
          if (caller.kind === 'peer' && bodySha256(body) !== caller.bodySha256)
            throw new FerryError('unauthorized', 'request body does not match its signed digest');
          let parsed: unknown;
          try {
            parsed = body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined;
          } catch {
            throw new FerryError('bad_request', 'body is not JSON');
          }
          const answer =
            route.auth === 'grant'
              ? await route.handle(parsed, caller as GrantCaller)
              : await route.handle(parsed, caller as PeerCaller);
          send(res, 200, answer);
        } catch (err) {
          const fe = toFerryError(err);
          send(res, fe.httpStatus, toProblem(fe), 'application/json', !bodyRead && !req.complete);
        }
      })();
    };
  const serverOptions: ServerOptions = {
    headersTimeout: PEER_HEADERS_TIMEOUT_MS,
    requestTimeout: PEER_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: PEER_KEEP_ALIVE_TIMEOUT_MS,
    // How often the header and request timeouts are checked (default 30 s would let them run over).
    connectionsCheckingInterval: 1_000,
  };
  const guard = (server: Server, secure: boolean): Server => {
    // Node would answer "Expect: 100-continue" itself, inviting the body before anything is checked.
    server.on('checkContinue', handler(secure));
    server.keepAliveTimeout = PEER_KEEP_ALIVE_TIMEOUT_MS;
    server.setTimeout(PEER_SOCKET_IDLE_MS, (socket) => socket.destroy());
    server.on('clientError', (err: Error, socket: Duplex) => {
      // Over TLS without a certificate of the gateway, not even a malformed request is answered.
      if (secure && !(socket as TLSSocket).authorized) return void socket.destroy();
      answerClientError(err, socket, {
        headersTimeoutMs: PEER_HEADERS_TIMEOUT_MS,
        requestTimeoutMs: PEER_REQUEST_TIMEOUT_MS,
      });
    });
    // The two servers never listen themselves (the port below hands them connections): this starts
    // their header and request timeout checks, which Node starts on 'listening'.
    server.emit('listening');
    return server;
  };
  const plain = guard(createHttpServer(serverOptions, handler(false)), false);
  let secure: HttpsServer | undefined;
  const setTls = (m: PeerTlsMaterial): void => {
    const context = { key: m.key, cert: m.cert, ca: m.ca };
    if (secure) {
      secure.setSecureContext(context);
      return;
    }
    secure = createHttpsServer(
      // The certificate is checked per request (above): an operator's /admin/ call has none.
      { ...serverOptions, ...context, requestCert: true, rejectUnauthorized: false },
      handler(true),
    );
    guard(secure, true);
    // A handshake that fails (a client that does not trust this node's certificate) just ends the connection.
    secure.on('tlsClientError', (_err: Error, socket: Duplex) => socket.destroy());
  };

  const port: NetServer = createNetServer({ pauseOnConnect: false }, (socket: Socket) => {
    const cut = setTimeout(() => socket.destroy(), FIRST_BYTE_TIMEOUT_MS);
    cut.unref();
    socket.once('close', () => clearTimeout(cut));
    socket.on('error', () => socket.destroy());
    socket.once('readable', () => {
      clearTimeout(cut);
      const first = socket.read(1) as Buffer | null;
      if (first === null) return void socket.destroy();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        // No certificate yet (an auto one comes with the first heartbeat reply): nothing to answer with.
        if (!secure) return void socket.destroy();
        secure.emit('connection', socket);
      } else plain.emit('connection', socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    port.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new FerryError('conflict', `node-to-node port ${o.port} is in use on ${o.host}`, {
              hint: 'pick another --port (0 = any free port), or stop what listens there (another `ferry node` or `ferry up`?)',
            })
          : err,
      ),
    );
    port.listen(o.port, o.host, () => resolve());
  });
  const address = port.address();
  return {
    port: typeof address === 'object' && address ? address.port : o.port,
    setTls,
    close: () =>
      new Promise<void>((resolve) => {
        port.close(() => resolve());
        // Idle kept-alive connections end now; busy ones after their answer.
        for (const s of [plain, secure]) s?.close();
      }),
  };
}
