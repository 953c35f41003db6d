/**
 * Error checks: every broken endpoint of the harness, as a source (at plan) and as a sink (at
 * prepare, open, stage or commit, whichever reaches the store first), fails with the catalogue code
 * and retry decision of its failure and a message that names the store, the linked service, the
 * object and the operation, without a secret.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConformanceKit } from './conformance-kit.ts';
import { rejection } from './conformance-kit.ts';
import { attemptOutput } from './conformance-data.ts';
import { EXPECTED_FAILURE, type BrokenCase } from './conformance-harness.ts';

export function errorChecks(kit: ConformanceKit): void {
  describe('errors', () => {
    for (const broken of kit.harness.broken) {
      const { code } = EXPECTED_FAILURE[broken.failure];
      brokenCheck(kit, `source, ${broken.what}: ${code}`, broken, 'source');
      brokenCheck(kit, `sink, ${broken.what}: ${code}`, broken, 'sink');
    }
  });
}

function brokenCheck(kit: ConformanceKit, name: string, broken: BrokenCase, side: 'source' | 'sink'): void {
  const { harness } = kit;
  kit.check(name, async (t) => {
    if (broken.skip !== undefined) return t.skip(broken.skip);
    if (!harness[side]) return t.skip(`${harness.type} has no ${side} connector`);
    assert.ok(broken.endpoints, `${broken.what}: a case that is not skipped builds endpoints`);
    const made = await broken.endpoints();
    const endpoint = made[side];
    assert.ok(endpoint, `${broken.what}: no ${side} endpoint`);
    const failing = side === 'source' ? plan(kit, endpoint) : writeThrough(kit, endpoint);
    const err = await rejection(failing);
    kit.assertFailure(err, EXPECTED_FAILURE[broken.failure], endpoint, made.mentions, made.secrets);
  });
}

async function plan(kit: ConformanceKit, endpoint: ResolvedEndpointT): Promise<void> {
  assert.ok(kit.harness.source);
  await kit.harness.source.plan(endpoint, kit.planCtx());
}

/** The sink's whole life for one small attempt: prepare, open, stage, commit; the first failure thrown. */
async function writeThrough(kit: ConformanceKit, endpoint: ResolvedEndpointT): Promise<void> {
  const sink = kit.harness.sink;
  assert.ok(sink);
  const run = kit.newRun();
  await kit.prepare(sink, endpoint, run);
  const writer = await sink.open(endpoint, kit.attemptCtx(run, 0, 'a1'));
  try {
    await kit.stageAll(writer, attemptOutput(kit.kind, 1), 0);
    await writer.commit();
  } catch (err) {
    await writer.abort().catch(() => {});
    throw err;
  }
}
