/**
 * The metrics history, the scale advice and the live table, against real processes: a three-node
 * gateway's history fills in at 10 s resolution; `ferry gateway show` and `ferry gateway top` print
 * every column of the seed's monitoring table; with all well, the advice is "nothing to do". Then
 * the dispatcher's process is killed: its history turns Offline with no figures, the dispatcher
 * change is an event with its reason, and the advice (API and `ferry gateway advise`) is to scale
 * out, naming it. Deleting the new dispatcher is an event with its reason too. In a terminal (a
 * pseudo-terminal from util-linux `script`), `top` redraws in place and quits on q.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, eventually, MAIN, NODE, Proc, track, ROOT } from './helpers/cluster.ts';
import { NODE_FLAGS } from '../src/common/runtime-flags.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';

const COLUMNS = [
  'NAME',
  'STATUS',
  'VERSION',
  'ROLE',
  'CPU',
  'MEM AVAIL',
  'NET IN/OUT',
  'JOBS',
  'DRAIN',
  'NODE-TO-NODE',
  'CREDENTIALS',
  'SEEN',
  'REASON',
];

test('history, show, top and advise on a live gateway; a killed dispatcher in each of them', async (t) => {
  const g = await gatewayWithNodes(t, 3);
  const api = g.svc.api;
  const flags = ['--service', g.svc.url, '--token', g.svc.token];
  const env = { FERRY_TOKEN: '', FERRY_ADMIN_TOKEN: '', FERRY_SERVICE: '' };
  const metrics = (node: string, window = '1h') =>
    api.call('GET', `/api/v1/gateways/${g.gateway}/nodes/${node}/metrics?window=${window}`);

  // Samples every 10 s once the service's start-up grace is over.
  const first = await eventually(
    'two history points of node-1',
    async () => {
      const m = await metrics('node-1');
      return m.points.length >= 2 && m;
    },
    40_000,
  );
  assert.equal(first.node, 'node-1');
  assert.equal(first.window, '1h');
  assert.equal(first.resolutionSeconds, 10);
  const [p0, p1] = first.points;
  assert.equal(Date.parse(p1.at) - Date.parse(p0.at), 10_000);
  assert.equal(Date.parse(p0.at) % 10_000, 0);
  for (const p of first.points) {
    assert.equal(p.status, 'Online');
    assert.ok(p.cpuPercent >= 0 && p.cpuPercent <= 100, `cpu ${p.cpuPercent}`);
    assert.ok(p.memoryAvailableBytes > 0 && p.memoryAvailableBytes <= p.memoryTotalBytes);
    assert.ok(p.networkInBytesPerSec >= 0 && p.networkOutBytesPerSec >= 0);
    assert.equal(p.running, 0);
    assert.ok(p.limit >= 1);
  }
  const day = await metrics('node-1', '24h');
  assert.equal(day.resolutionSeconds, 300);
  assert.ok(day.points.length >= 1 && day.points.length <= 2);

  // show: every column, a row per node, the dispatcher and why.
  const show = await cli(['gateway', 'show', g.gateway, ...flags], env);
  assert.equal(show.code, 0, show.stderr);
  const header = show.stdout.split('\n').find((l) => l.startsWith('NAME'));
  assert.deepEqual(header?.split(/ {2,}/), COLUMNS);
  for (const n of ['node-1', 'node-2', 'node-3'])
    assert.match(
      show.stdout,
      new RegExp(`^${n} +Online +\\S+ +(dispatcher|worker) +[\\d.]+% +[\\d.]+ \\w+ +`, 'm'),
    );
  assert.match(show.stdout, /^dispatcher: +node-1 \(epoch \d+ since \S+: .+\)$/m);

  // top without a terminal: one frame per refresh, each after a timestamp line.
  const top = await cli(['gateway', 'top', g.gateway, '--interval', '0.5', '--count', '3', ...flags], env);
  assert.equal(top.code, 0, top.stderr);
  const frames = top.stdout.split(/^--- /m).filter((f) => f.length > 0);
  assert.equal(frames.length, 3);
  const stamps = frames.map((f) => Date.parse(/every 0\.5 s, (\S+)\n/.exec(f)?.[1] ?? ''));
  for (const [i, f] of frames.entries()) {
    assert.match(f, /^ferry gateway top gw: every 0\.5 s, \S+\n/);
    assert.match(f, /^NAME +STATUS +VERSION +ROLE +CPU/m);
    assert.equal(f.match(/^node-\d +Online /gm)?.length, 3);
    if (i > 0)
      assert.ok(stamps[i]! - stamps[i - 1]! >= 450, `refreshes ${stamps[i]! - stamps[i - 1]!} ms apart`);
  }
  const json = await cli(
    ['gateway', 'top', g.gateway, '--interval', '0.5', '--count', '2', '--json', ...flags],
    env,
  );
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(Date.parse(l.at) > 0);
    assert.equal(l.name, g.gateway);
    assert.equal(l.nodeList.length, 3);
  }
  // ... and until interrupted: SIGINT ends it cleanly.
  const live = track(
    t,
    new Proc('top', ['gateway', 'top', g.gateway, '--interval', '0.5', ...flags], env, ROOT),
  );
  await live.waitFor(/^node-3 /m);
  live.kill('SIGINT');
  assert.deepEqual(await live.exited, { code: 0, signal: null });
  // Refusals: a bad window, a gateway that does not exist.
  const badWindow = await cli(['gateway', 'advise', g.gateway, '--window', '1y', ...flags], env);
  assert.notEqual(badWindow.code, 0);
  assert.match(badWindow.stderr, /--window takes 1h, 24h or 7d \(got "1y"\)/);
  const noGateway = await cli(['gateway', 'top', 'nope', '--count', '1', ...flags], env);
  assert.notEqual(noGateway.code, 0);
  assert.match(noGateway.stderr, /gateway "nope" does not exist/);
  assert.equal((await api.raw('GET', '/api/v1/gateways/nope/advice')).status, 404);

  // All well: nothing to do.
  const calm = await cli(['gateway', 'advise', g.gateway, ...flags], env);
  assert.equal(calm.code, 0, calm.stderr);
  assert.match(calm.stdout, /^NOTHING TO DO: Nothing to do\n/);
  assert.match(calm.stdout, /^ {2}average CPU: [\d.]+ %$/m);

  // The dispatcher's process dies.
  g.nodes[0]?.proc.kill('SIGKILL');
  const offline = await eventually(
    'an Offline point of node-1',
    async () => {
      const m = await metrics('node-1');
      return m.points.find((p: { status: string }) => p.status === 'Offline');
    },
    40_000,
  );
  assert.deepEqual(
    [offline.cpuPercent, offline.memoryAvailableBytes, offline.networkInBytesPerSec, offline.running],
    [null, null, null, null],
  );
  const events = (await api.call('GET', `/api/v1/gateways/${g.gateway}/events`)).events;
  const moved = events.find(
    (e: { kind: string; message: string }) =>
      e.kind === 'dispatcher_changed' && e.message.startsWith('dispatcher node-1 -> '),
  );
  assert.ok(moved, JSON.stringify(events));
  assert.match(moved.message, /^dispatcher node-1 -> node-[23] \(epoch \d+\): .*node-1.*/);

  const advice = await api.call('GET', `/api/v1/gateways/${g.gateway}/advice`);
  assert.equal(advice.gateway, g.gateway);
  assert.equal(advice.window, '1h');
  const out = advice.advice.find((a: { kind: string }) => a.kind === 'scale_out');
  assert.ok(out, JSON.stringify(advice));
  assert.match(out.detail, /node-1 went Offline/);
  assert.deepEqual(
    out.figures.find((f: { name: string }) => f.name === 'nodes that went Offline'),
    {
      name: 'nodes that went Offline',
      value: 1,
      unit: 'nodes',
    },
  );
  const advise = await cli(['gateway', 'advise', g.gateway, '--window', '24h', ...flags], env);
  assert.equal(advise.code, 0, advise.stderr);
  assert.match(
    advise.stdout,
    /^SCALE OUT: Add a node: tasks timed out or nodes went Offline\n.*node-1 went Offline/m,
  );

  // show: the dead node Offline, with no figures and the reason.
  const after = await cli(['gateway', 'show', g.gateway, ...flags], env);
  assert.match(after.stdout, /^node-1 +Offline +\S+ +worker +- +- +- +-\/\d+ .*\S/m);

  // Deleting the dispatcher: an event with its reason, then the election's.
  const gw = await api.call('GET', `/api/v1/gateways/${g.gateway}`);
  const dispatcher = gw.dispatcher as string;
  await api.call('DELETE', `/api/v1/gateways/${g.gateway}/nodes/${dispatcher}`);
  const deleted = await eventually('the deletion and the next election in the events', async () => {
    const ev = (await api.call('GET', `/api/v1/gateways/${g.gateway}/events`)).events as {
      kind: string;
      message: string;
    }[];
    const gone = ev.find(
      (e) => e.kind === 'dispatcher_changed' && e.message.startsWith(`dispatcher ${dispatcher} -> none`),
    );
    // Newest first: the election comes after (before, in the list) the deletion.
    const next =
      gone &&
      ev
        .slice(0, ev.indexOf(gone))
        .find((e) => e.kind === 'dispatcher_changed' && e.message.startsWith('dispatcher none -> node-'));
    return gone && next && { gone, next };
  });
  assert.match(
    deleted.gone.message,
    new RegExp(`^dispatcher ${dispatcher} -> none \\(epoch \\d+\\): ${dispatcher} was deleted$`),
  );
  assert.match(deleted.next.message, /^dispatcher none -> node-[23] \(epoch \d+\): .+/);
});

test('top in a terminal redraws in place and quits on q', async (t) => {
  const g = await gatewayWithNodes(t, 1);
  const command = [NODE, ...NODE_FLAGS, MAIN, 'gateway', 'top', g.gateway, '--interval', '0.5']
    .concat(['--service', g.svc.url, '--token', g.svc.token])
    .map((a) => `'${a}'`)
    .join(' ');
  // util-linux `script` runs the command on a pseudo-terminal of its own.
  const term = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, FERRY_TOKEN: '', FERRY_SERVICE: '' },
  });
  let output = '';
  term.stdout.on('data', (d: Buffer) => (output += d.toString()));
  term.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => term.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (term.exitCode === null) term.kill('SIGKILL');
  });
  await eventually('two frames drawn in place', () => output.split('\x1b[H\x1b[2J').length >= 3, 20_000);
  assert.match(output, /ferry gateway top gw: every 0\.5 s, q to quit, \S+/);
  assert.match(output, /node-1 +Online /);
  term.stdin.write('q');
  const code = await Promise.race([exited, sleep(5000).then(() => 'still running')]);
  assert.equal(code, 0, output.slice(-500));
});
