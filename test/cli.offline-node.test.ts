/**
 * `ferry node list` for a node that stopped reporting: its figures are `-` (its last CPU and jobs
 * would read as live) and SEEN says how long ago it was last heard from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, cli, eventually } from './helpers/cluster.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';

test('an Offline node shows `-` for its figures and when it was last seen', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const list = async (): Promise<string[]> => {
    const res = await cli(['--service', g.svc.url, '--token', ADMIN_TOKEN, 'node', 'list', g.gateway]);
    assert.equal(res.code, 0, res.stderr);
    return res.stdout.trim().split('\n');
  };
  const before = await list();
  assert.match(before[0] ?? '', /\bSEEN\b/);
  const live = before.find((l) => l.startsWith('node-2')) ?? '';
  assert.match(live, /Online/);
  assert.match(live, /\d+(\.\d+)?%/, 'a reporting node shows its CPU');
  assert.match(live, / {2}(now|\d+ s ago)\s*$/, 'SEEN');

  g.nodes[1]!.proc.child.kill('SIGKILL');
  const offline = await eventually('node-2 listed Offline', async () => {
    const line = (await list()).find((l) => l.startsWith('node-2')) ?? '';
    return /Offline/.test(line) ? line : undefined;
  });
  const cells = offline.split(/\s{2,}/);
  const header = before[0]!.split(/\s{2,}/);
  const cell = (name: string): string => cells[header.indexOf(name)] ?? '';
  assert.equal(cell('CPU'), '-', offline);
  assert.equal(cell('MEM AVAIL'), '-', offline);
  assert.equal(cell('NET IN/OUT'), '-', offline);
  assert.match(cell('JOBS'), /^-\/\d+$/, offline);
  assert.match(cell('SEEN'), /^\d+ s ago$/, offline);
});
