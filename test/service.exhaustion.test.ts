/**
 * The service under unauthenticated resource exhaustion, as a real process: large bodies sent
 * without a token (to the public registration route and to token routes) are refused before they
 * are read, so its memory stays within budget; slow clients (headers dribbled byte by byte, bodies
 * never finished, silent or idle connections) are cut by the server within its timeouts; the API
 * keeps answering throughout; and a heartbeat listing 40,000 running attempts is a 400, not a 500.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startService, type ServiceHandle } from './helpers/cluster.ts';
import { heartbeatBody, registrationBody } from './helpers/agent-bodies.ts';

const MiB = 1024 * 1024;
/** The service's memory budget under attack. */
const RSS_BUDGET = 300 * MiB;
const HEADERS_TIMEOUT_MS = 2000;
const REQUEST_TIMEOUT_MS = 4000;
const KEEP_ALIVE_TIMEOUT_MS = 2000;

function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${field} of ${pid}`);
  return Number(m[1]) * 1024;
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`;

/** A raw connection to the service: what it answered, and when the server closed it. */
interface Conn {
  socket: Socket;
  answer: string;
  openedAt: number;
  closed: Promise<number>;
}

function open(svc: ServiceHandle): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect(svc.port, '127.0.0.1');
    const openedAt = Date.now();
    const conn: Conn = {
      socket,
      answer: '',
      openedAt,
      closed: new Promise((done) => socket.once('close', () => done(Date.now()))),
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      if (conn.answer.length < 4096) conn.answer += d;
    });
    socket.on('error', () => undefined); // a reset while we write is the server refusing: expected
    socket.once('connect', () => resolve(conn));
    socket.once('error', reject);
  });
}

/** Writes `total` bytes of body after `head`, with backpressure, until done or the server closes. */
async function sendBody(c: Conn, head: string, total: number, chunked: boolean): Promise<number> {
  const piece = Buffer.alloc(64 * 1024, 'a');
  let sent = 0;
  const write = (b: Buffer | string): Promise<void> | undefined => {
    if (c.socket.destroyed || c.socket.writableEnded) return undefined;
    return c.socket.write(b) ? Promise.resolve() : new Promise((r) => c.socket.once('drain', r));
  };
  let closed = false;
  void c.closed.then(() => (closed = true));
  await write(head);
  await write(chunked ? `${(8).toString(16)}\r\n{"key":"\r\n` : '{"key":"');
  while (sent < total && !closed) {
    const w = chunked
      ? write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]))
      : write(piece);
    if (!w) break;
    await Promise.race([w, c.closed]);
    sent += piece.length;
  }
  return sent;
}

async function apiAnswers(svc: ServiceHandle, what: string): Promise<void> {
  const health = await fetch(`${svc.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  assert.equal(health.status, 200, `${what}: /healthz`);
  const gw = await svc.api.call('GET', '/api/v1/gateways/gw');
  assert.equal(gw.name, 'gw', `${what}: an authenticated call`);
}

test('the service under unauthenticated exhaustion', async (t) => {
  const svc = await startService(t, {
    config: {
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
    },
  });
  const pid = svc.proc.pid;
  const { key1 } = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
  const reg = await svc.api.raw('POST', '/api/v1/agent/register', registrationBody(key1, 'n1'), '');
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const nodeToken: string = reg.body.nodeToken;
  const before = statusBytes(pid, 'VmRSS');
  t.diagnostic(`service RSS at rest: ${mib(before)}`);

  await t.test('16 unauthenticated 32 MiB bodies at once: refused unread, memory within budget', async () => {
    const BODY = 32 * MiB;
    const targets: { path: string; chunked: boolean }[] = [
      // The public route (no token needed): declared and chunked bodies.
      ...Array.from({ length: 4 }, () => ({ path: '/api/v1/agent/register', chunked: false })),
      ...Array.from({ length: 4 }, () => ({ path: '/api/v1/agent/register', chunked: true })),
      // Token routes, with the largest body limits, without a token.
      ...Array.from({ length: 4 }, () => ({ path: '/api/v1/agent/reports', chunked: false })),
      ...Array.from({ length: 2 }, () => ({ path: '/api/v1/agent/reports', chunked: true })),
      ...Array.from({ length: 2 }, () => ({ path: '/api/v1/pipelines', chunked: false })),
    ];
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, statusBytes(pid, 'VmRSS'))), 50);
    try {
      const conns = await Promise.all(targets.map(() => open(svc)));
      const sending = conns.map((c, i) => {
        const { path, chunked } = targets[i]!;
        const method = path === '/api/v1/pipelines' ? 'PUT' : 'POST';
        const head =
          `${method} ${path} HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\n` +
          (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${BODY + 10}\r\n\r\n`);
        return sendBody(c, head, BODY, chunked);
      });
      await apiAnswers(svc, 'during the large bodies');
      const sent = await Promise.all(sending);
      const closedAt = await Promise.all(conns.map((c) => c.closed));
      for (const [i, c] of conns.entries()) {
        const { path, chunked } = targets[i]!;
        const what = `${path} ${chunked ? 'chunked' : 'declared'}`;
        assert.ok(sent[i]! < BODY, `${what}: the server stopped reading (${mib(sent[i]!)} sent)`);
        assert.ok(closedAt[i]! - c.openedAt < 10_000, `${what}: closed by the server`);
        // Where the answer arrived before the connection was cut, it is a clear 4xx problem.
        if (c.answer) {
          assert.match(c.answer, /^HTTP\/1\.1 4\d\d /, what);
          assert.match(c.answer, /"code":"(bad_request|unauthorized)"/, what);
        }
      }
      const answered = conns.filter((c) => c.answer).length;
      t.diagnostic(`${answered} of ${conns.length} read their 4xx before the connection closed`);
      await apiAnswers(svc, 'after the large bodies');
    } finally {
      clearInterval(sampler);
    }
    const hwm = statusBytes(pid, 'VmHWM');
    t.diagnostic(`service RSS: peak sampled ${mib(peak)}, high-water mark ${mib(hwm)}`);
    assert.ok(hwm < RSS_BUDGET, `service peak RSS ${mib(hwm)} < ${mib(RSS_BUDGET)}`);
  });

  await t.test('300 slow clients are cut within the timeouts while the API keeps answering', async () => {
    const startedAt = Date.now();
    const kinds = ['dribbled headers', 'silent', 'unfinished body', 'idle after a request'] as const;
    const conns: { kind: (typeof kinds)[number]; conn: Conn }[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = kinds[i % kinds.length]!;
      conns.push({ kind, conn: await open(svc) });
    }
    const head = `POST /api/v1/agent/register HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\n`;
    const timers: NodeJS.Timeout[] = [];
    for (const { kind, conn } of conns) {
      if (kind === 'dribbled headers') {
        // One byte of the headers every 250 ms: they would take ~20 s, and never end.
        let at = 0;
        timers.push(
          setInterval(() => {
            if (!conn.socket.destroyed) conn.socket.write(head[at++ % head.length]!);
          }, 250),
        );
      } else if (kind === 'unfinished body') {
        // Within the route's body limit (64 KiB): only the request timeout can end it.
        conn.socket.write(`${head}Content-Length: 60000\r\n\r\n{"key":"`);
        timers.push(
          setInterval(() => {
            if (!conn.socket.destroyed) conn.socket.write('aaaa');
          }, 250),
        );
      } else if (kind === 'idle after a request') {
        conn.socket.write('GET /healthz HTTP/1.1\r\nHost: ferry\r\nConnection: keep-alive\r\n\r\n');
      }
    }
    try {
      // While they hang on: the API answers.
      await sleep(1000);
      await apiAnswers(svc, 'with 300 slow clients');
      const rss = statusBytes(pid, 'VmRSS');
      t.diagnostic(`service RSS with 300 slow clients: ${mib(rss)}`);
      assert.ok(rss < RSS_BUDGET);

      // Every one is closed by the server: within its timeout plus the once-a-second check (and
      // generous slack for a busy machine), far below what they would take to finish.
      const bound = Math.max(HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS) + 6000;
      const closedAt = await Promise.all(
        conns.map(({ conn }) => Promise.race([conn.closed, sleep(bound + 5000).then(() => Infinity)])),
      );
      const late = conns
        .map(({ kind }, i) => ({ kind, after: closedAt[i]! - startedAt }))
        .filter((c) => c.after > bound);
      assert.deepEqual(late, [], `every slow connection closed by the server within ${bound} ms`);
      const worst = Math.max(...closedAt.map((at) => at - startedAt));
      t.diagnostic(`all 300 closed by the server within ${worst} ms`);
      for (const [i, { kind, conn }] of conns.entries()) {
        if (kind === 'idle after a request') assert.match(conn.answer, /^HTTP\/1\.1 200 /, kind);
        // The unfinished bodies were cut by the request timeout, not by anything sooner.
        if (kind === 'unfinished body') {
          assert.ok(
            closedAt[i]! - conn.openedAt >= REQUEST_TIMEOUT_MS - 100,
            `${kind}: not before the timeout`,
          );
          assert.match(conn.answer, /^HTTP\/1\.1 408 /, kind);
          assert.match(
            conn.answer,
            /"code":"bad_request","message":"the request did not arrive in time/,
            kind,
          );
        }
      }
    } finally {
      for (const tm of timers) clearInterval(tm);
      for (const { conn } of conns) conn.socket.destroy();
    }
    await apiAnswers(svc, 'after the slow clients');
  });

  await t.test(
    'a heartbeat listing 40,000 running attempts is a 400 naming the field, not a 500',
    async () => {
      const heartbeat = (running: string[]) => heartbeatBody('0.1.0', running);
      const many = Array.from({ length: 40_000 }, (_, i) => `att_${String(i).padStart(20, '0')}`);
      const r = await svc.api.raw('POST', '/api/v1/agent/heartbeat', heartbeat(many), nodeToken);
      assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 500));
      assert.equal(r.body.code, 'bad_request');
      assert.match(r.body.message, /^body\/running: /);
      // A real heartbeat still goes through, with as many running attempts as any node could have.
      const ok = await svc.api.raw(
        'POST',
        '/api/v1/agent/heartbeat',
        heartbeat(many.slice(0, 10_000)),
        nodeToken,
      );
      assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 500));
      assert.equal(ok.body.revoked.length, 10_000, "none of them is this node's: all revoked");
      // Nor may a node claim a limit above any an operator could set (so MAX_RUNNING stays far above).
      const huge = await svc.api.raw(
        'POST',
        '/api/v1/agent/heartbeat',
        { ...heartbeat([]), defaultLimit: 50_000 },
        nodeToken,
      );
      assert.equal(huge.status, 400, JSON.stringify(huge.body));
      assert.match(huge.body.message, /^body\/defaultLimit: /);
    },
  );

  await t.test(
    "a body over its route's limit is a clear 400 naming the limit, with or without a token",
    async () => {
      const big = (bytes: number) => ({ name: 'x', pad: 'a'.repeat(bytes) });
      for (const [what, method, path, body, token, limit] of [
        ['an admin route (1 MiB)', 'POST', '/api/v1/gateways', big(2 * MiB), svc.token, MiB],
        ['the public registration (64 KiB)', 'POST', '/api/v1/agent/register', big(100_000), '', 64 * 1024],
        ['a heartbeat (4 MiB)', 'POST', '/api/v1/agent/heartbeat', big(5 * MiB), nodeToken, 4 * MiB],
      ] as const) {
        const r = await svc.api.raw(method, path, body, token).catch((err: Error) => {
          throw new Error(`${what}: ${err.message} (${String((err.cause as Error | undefined)?.message)})`);
        });
        assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.message, `the body is larger than ${path} takes (at most ${limit} bytes)`, what);
      }
      // A pipeline may be larger than the default: 2 MiB reaches the pipeline's own checks.
      const pipeline = await svc.api.raw('PUT', '/api/v1/pipelines', { ...big(2 * MiB), activities: [] });
      assert.equal(pipeline.status, 400);
      assert.match(pipeline.body.message, /^pipeline: /);
      await apiAnswers(svc, 'after the oversized bodies');
    },
  );
});
