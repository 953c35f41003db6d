/**
 * A node's attempt reports travel in batches (src/node/report-batcher.ts): a run of many tiny tasks
 * on two nodes makes far fewer report requests than reports, and every report is still taken, each
 * attempt's outcome exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { metricSum } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test('many tiny tasks: reports go in batches, and every outcome is taken once', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '8'] });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), 'tiny', 300, (i) => 10 + i);
  const runId = await runPipeline(g, {
    name: 'tiny',
    activities: [
      {
        name: 'each',
        source: { linkedService: 'src', path: 'tiny', filesPerTask: 1 },
        sink: { linkedService: 'dst', path: 'copy' },
      },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(treeDigest(join(g.root, 'out', 'copy')), treeDigest(join(g.root, 'in', 'tiny')));
  assert.equal(run.tasks.length, 301); // the plan and one copy per file

  const outcomes = await metricSum(g.svc.url, 'ferry_attempt_reports_total', { kind: 'complete' });
  const taken = await metricSum(g.svc.url, 'ferry_attempt_reports_total', { outcome: 'taken' });
  const refused = await metricSum(g.svc.url, 'ferry_attempt_reports_total', { outcome: 'refused' });
  const requests = await metricSum(g.svc.url, 'ferry_attempt_report_batches_total');
  assert.equal(outcomes, 301, 'one outcome per task, none lost or doubled');
  assert.equal(refused, 0);
  // Each copy reports at least its start, its pre-commit renewal and its outcome; the plan, which
  // commits nothing, its start and its outcome.
  assert.ok(taken >= 3 * 300 + 2, `${taken} reports`);
  t.diagnostic(`${taken} reports in ${requests} requests`);
  assert.ok(requests < taken * 0.7, `${taken} reports in ${requests} requests`);
});
