/**
 * Prometheus /metrics of a real service and real nodes: the text passes `promtool check metrics`
 * (Prometheus's own linter: names, units, counters' _total, help), and the series the operator
 * needs are there with sane values: per node status, role, CPU, memory, network, jobs running and
 * limit; per gateway queue, pickup delay, task duration, rows and bytes moved, dispatcher changes
 * and lost attempts. A killed node turns Offline there and loses its figures; its attempts and
 * the dispatcher's move are counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  waitRun,
} from './helpers/scenario.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] ?? '', l[2] ?? '']),
    );
    samples.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return { text, samples };
}

/** `promtool check metrics` on the text: exit 0 and no finding. */
function promtool(text: string, what: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, `promtool could not run (apt-get install prometheus): ${String(r.error)}`);
  assert.equal(r.status, 0, `promtool check metrics on ${what}:\n${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', `promtool findings on ${what}`);
}

function one(samples: Sample[], name: string, labels: Record<string, string>): number {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.equal(hits.length, 1, `${name}${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]?.value ?? Number.NaN;
}

const has = (samples: Sample[], name: string, labels: Record<string, string>): boolean =>
  samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

test('service and node /metrics: promtool passes, and every named series is there with sane values', async (t) => {
  const g = await gatewayWithNodes(t, 3);
  const gw = { gateway: g.gateway };
  const files = makeFiles(g.root, 'in', 12, (i) => 20_000 + i * 1000);
  const totalBytes = files.reduce((a, f) => a + statSync(join(g.root, f)).size, 0);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  const runId = await runPipeline(g, {
    name: 'copy',
    activities: [
      { name: 'files', source: { linkedService: 'src', filesPerTask: 3 }, sink: { linkedService: 'dst' } },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded');
  const tasks = (run.tasks as unknown[]).length;
  assert.ok(tasks >= 2, `${tasks} tasks`);

  // A node's running count is its last heartbeat's, up to a second behind the run's end.
  const svc = await eventually('every node reporting no task running', async () => {
    const got = await scrape(g.svc.url);
    const running = got.samples.filter((x) => x.name === 'ferry_node_jobs_running');
    return running.length === 3 && running.every((x) => x.value === 0) && got;
  });
  promtool(svc.text, 'the service');
  const s = svc.samples;
  const view = await nodesView(g);
  const dispatcher = view.gateway.dispatcher as string;
  for (const n of view.nodes as { name: string }[]) {
    const node = { ...gw, node: n.name };
    assert.equal(one(s, 'ferry_node_status', { ...node, status: 'Online' }), 1);
    assert.equal(one(s, 'ferry_node_status', { ...node, status: 'Offline' }), 0);
    assert.equal(one(s, 'ferry_node_role', { ...node, role: 'dispatcher' }), n.name === dispatcher ? 1 : 0);
    assert.equal(one(s, 'ferry_node_role', { ...node, role: 'worker' }), n.name === dispatcher ? 0 : 1);
    const cpu = one(s, 'ferry_node_cpu_usage_ratio', node);
    assert.ok(cpu >= 0 && cpu <= 1, `cpu ${cpu}`);
    const available = one(s, 'ferry_node_memory_available_bytes', node);
    const total = one(s, 'ferry_node_memory_total_bytes', node);
    assert.ok(available > 0 && available <= total, `memory ${available} of ${total}`);
    assert.ok(one(s, 'ferry_node_network_receive_bytes_per_second', node) >= 0);
    assert.ok(one(s, 'ferry_node_network_transmit_bytes_per_second', node) >= 0);
    assert.equal(one(s, 'ferry_node_jobs_running', node), 0);
    assert.ok(one(s, 'ferry_node_jobs_limit', node) >= 1);
    const seen = one(s, 'ferry_node_last_heartbeat_timestamp_seconds', node);
    assert.ok(Math.abs(Date.now() / 1000 - seen) < 10, `last heartbeat ${seen}`);
  }
  assert.equal(one(s, 'ferry_gateway_status', { ...gw, status: 'Online' }), 1);
  assert.equal(one(s, 'ferry_gateway_queued_tasks', gw), 0);
  assert.equal(one(s, 'ferry_gateway_oldest_queued_task_age_seconds', gw), 0);
  // Every attempt of every task (a plan task, then the copies) was picked up once, and each task
  // succeeded once.
  const claimed = (run.tasks as { attemptList: unknown[] }[]).reduce((a, x) => a + x.attemptList.length, 0);
  assert.equal(one(s, 'ferry_task_pickup_delay_seconds_count', gw), claimed);
  const pickup = one(s, 'ferry_task_pickup_delay_seconds_sum', gw);
  assert.ok(pickup >= 0 && pickup < tasks * 10, `pickup ${pickup} s`);
  assert.equal(one(s, 'ferry_task_duration_seconds_count', { ...gw, outcome: 'succeeded' }), tasks);
  assert.equal(
    one(s, 'ferry_task_duration_seconds_bucket', { ...gw, outcome: 'succeeded', le: '+Inf' }),
    tasks,
  );
  assert.equal(one(s, 'ferry_moved_bytes_total', gw), totalBytes);
  assert.ok(has(s, 'ferry_moved_rows_total', gw));
  assert.ok(one(s, 'ferry_dispatcher_changes_total', gw) >= 1);
  assert.equal(one(s, 'ferry_attempts_lost_total', gw), 0);

  // Every node serves its own series, with the same names and labels.
  for (const n of view.nodes as { name: string; peerAddress: string }[]) {
    const node = { ...gw, node: n.name };
    const scraped = await eventually(`${n.name} running nothing`, async () => {
      const got = await scrape(`http://${n.peerAddress}`);
      return got.samples.some((x) => x.name === 'ferry_node_jobs_running' && x.value === 0) && got;
    });
    promtool(scraped.text, n.name);
    const ns = scraped.samples;
    assert.equal(one(ns, 'ferry_node_status', { ...node, status: 'Online' }), 1);
    assert.equal(one(ns, 'ferry_node_role', { ...node, role: 'dispatcher' }), n.name === dispatcher ? 1 : 0);
    const cpu = one(ns, 'ferry_node_cpu_usage_ratio', node);
    assert.ok(cpu >= 0 && cpu <= 1);
    assert.ok(one(ns, 'ferry_node_memory_available_bytes', node) > 0);
    assert.ok(one(ns, 'ferry_node_memory_total_bytes', node) > 0);
    assert.ok(one(ns, 'ferry_node_network_receive_bytes_per_second', node) >= 0);
    assert.ok(one(ns, 'ferry_node_network_transmit_bytes_per_second', node) >= 0);
    assert.equal(one(ns, 'ferry_node_jobs_running', node), 0);
    assert.equal(one(ns, 'ferry_node_jobs_limit', node), one(s, 'ferry_node_jobs_limit', node));
  }

  // The dispatcher's process dies: the service shows it Offline without figures, and counts the change.
  const changes = one(s, 'ferry_dispatcher_changes_total', gw);
  g.nodes.find((n) => n.name === dispatcher)?.proc.kill('SIGKILL');
  const after = await eventually('the dead dispatcher Offline and replaced', async () => {
    const { text, samples } = await scrape(g.svc.url);
    const dead = { ...gw, node: dispatcher };
    return one(samples, 'ferry_node_status', { ...dead, status: 'Offline' }) === 1 &&
      one(samples, 'ferry_node_role', { ...dead, role: 'dispatcher' }) === 0 &&
      one(samples, 'ferry_dispatcher_changes_total', gw) > changes
      ? { text, samples }
      : undefined;
  });
  promtool(after.text, 'the service after the kill');
  const dead = { ...gw, node: dispatcher };
  for (const name of [
    'ferry_node_cpu_usage_ratio',
    'ferry_node_memory_available_bytes',
    'ferry_node_network_receive_bytes_per_second',
    'ferry_node_jobs_running',
  ])
    assert.equal(has(after.samples, name, dead), false, `${name} of an Offline node`);
  assert.ok(one(after.samples, 'ferry_node_jobs_limit', dead) >= 1);
  assert.equal(one(after.samples, 'ferry_gateway_status', { ...gw, status: 'Limited' }), 1);
  assert.equal(
    after.samples.filter(
      (x) => x.name === 'ferry_node_role' && x.labels['role'] === 'dispatcher' && x.value === 1,
    ).length,
    1,
  );
});
