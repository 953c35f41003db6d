/**
 * Pipelines and runs in a real browser against a real service and three real nodes: the pipelines
 * list; start a run from the page and watch it live (progress rising while it runs, tasks with the
 * node of each attempt, rows, bytes, checksums) until it succeeds; filter its tasks by node; a
 * failing run's error as the service records it. Screenshots go to test-artifacts/portal/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { ADMIN_TOKEN, eventually } from './helpers/cluster.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, waitRun } from './helpers/scenario.ts';
import { openBrowser, signIn } from './helpers/browser.ts';

test('portal: start a run, follow it live task by task, filter by node; a failing run shows its error', async (t) => {
  const g = await gatewayWithNodes(t, 3);
  const api = g.svc.api;
  makeFiles(g.root, 'in', 24, () => 150_000);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  // 12 tasks of 300 kB at 200 kB/s each, one at a time per node: four waves of 1.5 s, time to watch.
  for (const n of g.nodes)
    await api.call('PUT', `/api/v1/gateways/${g.gateway}/nodes/${n.name}/limit`, { limit: 1 });
  await api.call('PUT', '/api/v1/pipelines', {
    name: 'copy',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 2 },
        sink: { linkedService: 'dst', path: 'copy' },
        maxBytesPerSecond: 200_000,
      },
    ],
  });
  mkdirSync(join(g.root, 'nothing-here-yet'), { recursive: true });
  await api.call('POST', '/api/v1/linked-services', {
    name: 'gone',
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root: join(g.root, 'missing') },
  });
  await api.call('PUT', '/api/v1/pipelines', {
    name: 'broken',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'gone' },
        sink: { linkedService: 'dst' },
        retry: { maxAttempts: 2, backoffMs: 50 },
      },
    ],
  });

  const { page, shot } = await openBrowser(t);
  await signIn(page, `${g.svc.url}/pipelines`, ADMIN_TOKEN);
  await page.locator('#pipelines tr[data-pipeline="copy"]').waitFor();
  assert.match(await page.locator('#pipelines').innerText(), /broken/);
  await page.getByRole('button', { name: 'Start a run of copy' }).click();

  // The run page, live: progress rises while the run is running.
  await page.waitForURL(/\/runs\/run_/);
  const runId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');
  const progress = page.locator('#run-progress');
  const done = async (): Promise<number> => Number(/(\d+) of/.exec(await progress.innerText())?.[1] ?? -1);
  const seen = new Set<number>();
  let liveBytes = false;
  await eventually(
    'the progress to move while the run runs, and a running task to show the bytes it copied so far',
    async () => {
      const status = await page.locator('#run-status').innerText();
      if (status !== 'running') return false;
      seen.add(await done());
      const running = await page
        .locator('#tasks tr[data-status="running"] [data-col="bytes"]')
        .allInnerTexts();
      if (running.some((b) => b !== '0 B')) liveBytes = true;
      return [...seen].filter((n) => n > 0 && n < 12).length >= 1 && seen.size >= 2 && liveBytes;
    },
    60_000,
    150,
  );
  await shot('run-live');
  const final = await waitRun(g, runId);
  assert.equal(final.status, 'succeeded');
  await eventually('the page to show the run succeeded', async () => {
    return (await page.locator('#run-status').innerText()) === 'succeeded';
  });
  assert.match(await progress.innerText(), /^12 of 12 tasks done \(100%\)/);

  // Every task with the node of its attempt, its rows, bytes and checksums, as the service has them.
  const copies = final.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 12);
  assert.ok(new Set(copies.map((tk: any) => tk.node)).size >= 2, 'the copies ran on several nodes');
  for (const tk of final.tasks) {
    const tr = page.locator(`#tasks tr[data-task="${tk.id}"]`);
    assert.equal(await tr.locator('[data-col="node"]').innerText(), tk.node);
    assert.match(await tr.locator('[data-col="status"]').innerText(), /succeeded/);
    assert.equal(await tr.locator('[data-col="rows"]').innerText(), String(tk.rows));
    for (const o of tk.outputs)
      assert.ok((await tr.locator('[data-col="checksums"]').innerText()).includes(o.sha256.slice(0, 12)));
  }
  await shot('run-succeeded');

  // A task's attempts, opened from its attempts count: the node and status of each.
  const first = copies[0];
  await page
    .locator(`#tasks tr[data-task="${first.id}"]`)
    .getByRole('button', { name: String(first.attempts) })
    .click();
  const attempts = await page.locator('#tasks tr.attempts tbody tr').allInnerTexts();
  assert.equal(attempts.length, first.attemptList.length);
  first.attemptList.forEach((a: any, i: number) => {
    assert.match(attempts[i] ?? '', new RegExp(`^${a.node}\\s+${a.status}\\s+${a.epoch}\\b`));
  });

  // Filtered by node: only tasks an attempt of which ran there.
  const node = copies[0].node as string;
  await page.locator('#task-node').selectOption(node);
  const shown = await page
    .locator('#tasks tbody tr[data-task]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task')));
  const expected = final.tasks
    .filter((tk: any) => tk.attemptList.some((a: any) => a.node === node))
    .map((tk: any) => tk.id);
  assert.deepEqual(shown.sort(), expected.sort());
  assert.ok(shown.length < final.tasks.length);
  await shot('run-filtered-by-node');

  // A failing run: its error, as the service recorded it, on the run page and in the runs list.
  await page.getByRole('link', { name: 'Pipelines and runs' }).first().click();
  await page.getByRole('button', { name: 'Start a run of broken' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/runs/') && !u.pathname.endsWith(runId));
  const badId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');
  const bad = await waitRun(g, badId);
  assert.equal(bad.status, 'failed');
  assert.ok(bad.error);
  await page.locator('#run-error').waitFor();
  assert.equal(await page.locator('#run-error').innerText(), `The run failed: ${bad.error}`);
  assert.match(await page.locator('#run-status').innerText(), /failed/);
  const failedTask = bad.tasks.find((tk: any) => tk.status === 'failed');
  assert.ok(failedTask?.error);
  assert.equal(
    await page.locator(`#tasks tr[data-task="${failedTask.id}"] [data-col="error"]`).innerText(),
    failedTask.error,
  );
  await shot('run-failed');
  await page.getByRole('link', { name: 'Pipelines and runs' }).first().click();
  await page.locator(`#runs tr[data-run="${badId}"]`).waitFor();
  assert.ok((await page.locator(`#runs tr[data-run="${badId}"]`).innerText()).includes(bad.error));
});
