/**
 * A request the HTTP parser gave up on (too slow, headers too large, not HTTP), on the service's port
 * or a node's: answered with a problem body like every other refusal, then the connection is closed.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { FerryError, toProblem } from './errors.ts';

export function answerClientError(
  err: Error & { code?: string },
  socket: Duplex,
  timeouts: { headersTimeoutMs: number; requestTimeoutMs: number },
): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (err.code === 'HPE_CLOSED_CONNECTION') {
    // Bytes after a request already answered with "Connection: close" (a refused body left unread):
    // that answer is on its way; the connection closes after it, and is cut if it lingers.
    setTimeout(() => socket.destroy(), 1_000).unref();
    return;
  }
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [
          408,
          `the request did not arrive in time (headers within ${timeouts.headersTimeoutMs} ms, the whole request within ${timeouts.requestTimeoutMs} ms)`,
        ]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large']
        : [400, 'not a valid HTTP request'];
  const body = JSON.stringify(toProblem(new FerryError('bad_request', message)));
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  socket.destroy();
}
