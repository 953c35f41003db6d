/**
 * The node port under an unauthenticated flood, with a real `ferry node` process: 16 concurrent
 * 16 MiB bodies, unsigned or signed by a key that is no member's (some chunked, without a
 * Content-Length), and 300 slow connections (trickling headers, or silent). The node refuses each
 * large request from its headers before reading the body and closes the connection; it cuts the
 * slow connections itself (header timeout); its RSS stays within its 256 MiB budget; and through all
 * of it, it answers /healthz and runs the tasks its dispatcher sends it over that same port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from './helpers/cluster.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, runPipeline, waitRun } from './helpers/scenario.ts';
import { keyOf, peerUrlOf, registrationOf, strangerKey } from './helpers/peer.ts';
import { peerHeaders } from '../src/protocol/peer.ts';

const MiB = 1024 * 1024;
const BUDGET = 256 * MiB;
const FLOOD_BYTES = 16 * MiB;

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `VmRSS of ${pid}`);
  return Number(m[1]) * 1024;
}

interface Flooded {
  /** The status line the node answered with (undefined: none). */
  status: number | undefined;
  /** Bytes of body the node let us write before it closed the connection. */
  written: number;
}

/**
 * Sends `head` (request line and headers) and then up to `total` bytes of body as fast as the node
 * reads them (chunked framing when `chunked`); resolves when the node closes the connection.
 */
function flood(port: number, head: string, total: number, chunked: boolean): Promise<Flooded> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const frame = chunked
      ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
      : chunk;
    let written = 0;
    let response = '';
    let closed = false;
    const guard = setTimeout(() => socket.destroy(), 60_000);
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      clearTimeout(guard);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(response);
      resolve({ status: m ? Number(m[1]) : undefined, written });
    });
    socket.on('connect', () => {
      socket.write(head);
      const pump = (): void => {
        while (!closed && written < total) {
          written += chunk.length;
          if (!socket.write(frame)) {
            socket.once('drain', pump);
            return;
          }
        }
        if (!closed && chunked) socket.write('0\r\n\r\n');
      };
      pump();
    });
  });
}

function requestHead(path: string, headers: Record<string, string>, length: number | 'chunked'): string {
  const lines = [
    `POST ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Content-Type: application/json',
    'Connection: close',
  ];
  lines.push(length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

interface Slow {
  /** ms from connect to the node closing it; undefined while open. */
  closedAfter: number | undefined;
  stop(): void;
}

/** A connection that trickles a header line every second (or, `silent`, sends nothing at all). */
function slowClient(port: number, silent: boolean): Slow {
  const socket = connect(port, '127.0.0.1');
  const opened = Date.now();
  const s: Slow = { closedAfter: undefined, stop: () => socket.destroy() };
  let timer: NodeJS.Timeout | undefined;
  socket.on('error', () => undefined);
  socket.resume(); // read (and drop) the node's 408, so its close is seen at once
  socket.on('close', () => {
    clearInterval(timer);
    s.closedAfter ??= Date.now() - opened;
  });
  socket.on('connect', () => {
    if (silent) return;
    socket.write('POST /v1/dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let i = 0;
    timer = setInterval(() => socket.write(`X-Slow-${i++}: ${'x'.repeat(10)}\r\n`), 1000);
  });
  return s;
}

test('the node port under 16 x 16 MiB unsigned or foreign bodies and 300 slow connections: refused from headers, within its memory budget, still working', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '2'] });
  const gw = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
  const target = g.nodes.find((n) => n.name !== gw.dispatcher)!;
  const dispatcher = g.nodes.find((n) => n.name === gw.dispatcher)!;
  const base = await peerUrlOf(target.dataDir);
  const port = Number(new URL(base).port);
  const regT = registrationOf(target.dataDir);
  const regD = registrationOf(dispatcher.dataDir);
  const pid = target.proc.pid;

  // Work the dispatcher hands to the target over the attacked port, running through the attack.
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 12, () => 256 * 1024);
  await sleep(1000);
  const rssBefore = rssOf(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, rssOf(pid));
    } catch {
      // the process is gone: the assertions below say so
    }
  }, 25);
  t.after(() => clearInterval(sampler));
  const runId = await runPipeline(g, {
    name: 'under-attack',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 96 * 1024,
      },
    ],
  });

  // 300 slow connections, opened first and held while the floods run.
  const slow = Array.from({ length: 300 }, (_, i) => slowClient(port, i % 3 === 0));
  t.after(() => slow.forEach((s) => s.stop()));

  // Health, polled all along: each answer within 5 s.
  let healthy = 0;
  let unhealthy = 0;
  let polling = true;
  t.after(() => (polling = false));
  const poller = (async () => {
    while (polling) {
      try {
        const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
        if (r.status === 200) healthy++;
        else unhealthy++;
      } catch {
        unhealthy++;
      }
      await sleep(250);
    }
  })();

  const path = '/v1/dispatch';
  const stranger = strangerKey();
  const foreign = (nodeId: string): Record<string, string> =>
    peerHeaders(stranger, {
      method: 'POST',
      path,
      gatewayId: regT.gatewayId,
      nodeId,
      toNodeId: regT.nodeId,
      body: '',
    });
  const attacks: { what: string; head: string; chunked: boolean }[] = [];
  for (let i = 0; i < 16; i++) {
    const chunked = i % 4 === 3;
    const length = chunked ? 'chunked' : FLOOD_BYTES;
    const headers = i % 3 === 0 ? {} : foreign(i % 3 === 1 ? 'node_stranger' : regD.nodeId);
    const what = `${i % 3 === 0 ? 'unsigned' : i % 3 === 1 ? 'signed by a stranger' : "a stranger's key in the dispatcher's name"}${chunked ? ', chunked' : ''}`;
    attacks.push({ what, head: requestHead(path, headers, length), chunked });
  }
  // A member's own signature does not let it past the route's limit: refused by Content-Length.
  attacks.push({
    what: 'a member, over the dispatch limit',
    head: requestHead(
      path,
      peerHeaders(keyOf(regD), {
        method: 'POST',
        path,
        gatewayId: regT.gatewayId,
        nodeId: regD.nodeId,
        toNodeId: regT.nodeId,
        body: '',
      }),
      64 * MiB,
    ),
    chunked: false,
  });
  const flooded = await Promise.all(attacks.map((a) => flood(port, a.head, FLOOD_BYTES, a.chunked)));
  for (const [i, f] of flooded.entries()) {
    const a = attacks[i]!;
    assert.equal(f.status, a.what.startsWith('a member') ? 400 : 401, `${a.what}: answered before its body`);
    // What the kernel's socket buffers took counts as written; the node read none of it.
    assert.ok(f.written < FLOOD_BYTES, `${a.what}: the node closed the connection after ${f.written} bytes`);
  }
  t.diagnostic(
    `body bytes written before the node closed: max ${Math.max(...flooded.map((f) => f.written))}`,
  );

  // The slow connections are cut by the node (header timeout), not left open for minutes.
  await eventually(
    'the node to close every slow connection',
    () => slow.every((s) => s.closedAfter !== undefined),
    45_000,
    250,
  ).catch((err: unknown) => {
    const open = slow.map((s, i) => [i, s.closedAfter] as const).filter(([, c]) => c === undefined);
    throw new Error(
      `${(err as Error).message}: ${open.length} open, e.g. ${JSON.stringify(open.slice(0, 10))}; closed: ${JSON.stringify(
        slow
          .map((s) => s.closedAfter)
          .filter((c) => c !== undefined)
          .slice(0, 20),
      )}`,
    );
  });
  const slowest = Math.max(...slow.map((s) => s.closedAfter ?? Infinity));
  t.diagnostic(`slow connections closed by the node after at most ${slowest} ms`);
  assert.ok(slowest < 30_000, `closed within 30 s (slowest ${slowest} ms)`);

  const run = await waitRun(g, runId, 120_000);
  polling = false;
  await poller;
  clearInterval(sampler);
  t.diagnostic(
    `target node RSS: ${(rssBefore / MiB).toFixed(0)} MiB before, peak ${(rssPeak / MiB).toFixed(0)} MiB under attack`,
  );
  assert.ok(target.proc.alive, 'the node is still running');
  assert.ok(rssPeak < BUDGET, `RSS peak ${(rssPeak / MiB).toFixed(0)} MiB within the 256 MiB budget`);
  assert.equal(unhealthy, 0, `/healthz failed ${unhealthy} times (answered ${healthy})`);
  assert.ok(healthy > 10, `/healthz answered ${healthy} times`);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const onTarget = run.tasks
    .flatMap((tk: any) => tk.attemptList)
    .filter((a: any) => a.node === target.name && a.status === 'succeeded');
  assert.ok(onTarget.length > 0, 'the attacked node ran tasks its dispatcher sent it over the attacked port');
  const nodes = (await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`)).nodes;
  assert.equal(nodes.find((n: any) => n.name === target.name).status, 'Online');
});
