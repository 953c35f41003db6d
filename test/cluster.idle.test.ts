/** An idle gateway stays idle: the dispatcher's claim is a real long-poll, not a busy loop. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { metricSum } from './helpers/cluster.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';

const claims = (url: string): Promise<number> => metricSum(url, 'ferry_claims_total');

test('with no work queued, the dispatcher long-polls instead of spinning', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const before = await claims(g.svc.url);
  // A measurement window, not a synchronisation: the count over it is the behaviour under test.
  await sleep(3000);
  const during = (await claims(g.svc.url)) - before;
  // A 1 s claim re-checks the queue every 500 ms: 6 to 9 checks in 3 s; a busy loop makes thousands.
  assert.ok(during <= 15, `${during} claim evaluations in 3 s`);
});
