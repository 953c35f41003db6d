/**
 * Connection test checks (SourceConnector.checkRead, SinkConnector.checkWrite, behind `ferry
 * linked-service test`), run with a place's linked services and no options, as the test runs them:
 * - on a good linked service, the read check and the write check pass with one line for the
 *   operator, the write check names its probe and leaves nothing behind, even two at once, and a
 *   probe name that is not a plain identifier is refused before the store is touched;
 * - each broken linked service of the harness fails both checks as a copy would (the catalogue code
 *   and retry decision of its failure, a message naming the store, linked service, object and
 *   operation, no secret) and, where the operator can act, with a hint;
 * - an aborted signal cancels both checks, whether it aborted before they started or while the
 *   store was not answering, promptly, and a cancelled write check leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { describe } from 'node:test';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import type { ConformanceKit } from './conformance-kit.ts';
import { rejection } from './conformance-kit.ts';
import { sample } from './conformance-data.ts';
import { EXPECTED_FAILURE, type BrokenCase } from './conformance-harness.ts';
import { silentServer } from './silent-server.ts';

/** The endpoint as a connection test gets it: the linked service alone. */
function linkedServiceOf(endpoint: ResolvedEndpointT): ResolvedEndpointT {
  return { ...endpoint, options: {} };
}

function probeName(): string {
  return `ferry_connection_test_${randomBytes(3).toString('hex')}`;
}

/** One line of text, the kind a terminal shows as it is. */
function assertOneLine(report: unknown, what: string): void {
  assert.equal(typeof report, 'string', `${what} resolves with text`);
  assert.match(report as string, /^\S[^\n]*$/, `${what} resolves with one line: ${String(report)}`);
}

export function connectionChecks(kit: ConformanceKit): void {
  const { harness, kind } = kit;
  const ctx = (signal = new AbortController().signal): ConnectorContext => ({
    signal,
    allowedRoots: harness.allowedRoots(),
  });

  describe('connection test', () => {
    kit.sourceCheck(
      'the read check passes on a good linked service, saying what it verified',
      async (source, place) => {
        await place.seed(sample(kind));
        const report = await source.checkRead(linkedServiceOf(place.source), ctx());
        assertOneLine(report, 'checkRead');
        for (const secret of place.secrets)
          assert.ok(!report.includes(secret), `the report shows a secret: ${report}`);
      },
    );

    kit.sinkCheck(
      'the write check passes on a good linked service, names its probe, and leaves nothing behind',
      async (sink, place) => {
        const probe = probeName();
        const report = await sink.checkWrite(linkedServiceOf(place.sink), ctx(), probe);
        assertOneLine(report, 'checkWrite');
        assert.ok(report.includes(probe), `the report names the probe ${probe}: ${report}`);
        for (const secret of place.secrets)
          assert.ok(!report.includes(secret), `the report shows a secret: ${report}`);
        assert.deepEqual(await place.probeLeftovers(probe), [], 'what the write check left');
      },
    );

    kit.sinkCheck('two write checks at once both pass and leave nothing behind', async (sink, place) => {
      const probes = [probeName(), probeName()];
      await Promise.all(probes.map((p) => sink.checkWrite(linkedServiceOf(place.sink), ctx(), p)));
      for (const p of probes)
        assert.deepEqual(await place.probeLeftovers(p), [], `what the write check ${p} left`);
    });

    kit.sinkCheck(
      'a probe name that is not a plain identifier is refused as bad_request',
      async (sink, place) => {
        for (const bad of ['../escape', 'Probe', 'probe"; DROP TABLE x; --', '', 'a'.repeat(64)]) {
          const err = await rejection(sink.checkWrite(linkedServiceOf(place.sink), ctx(), bad));
          kit.assertFailure(err, { code: 'bad_request', retryable: false }, place.sink, [], place.secrets);
        }
      },
    );

    for (const broken of harness.broken) {
      const { code } = EXPECTED_FAILURE[broken.failure];
      brokenCheck(kit, ctx, `read check, ${broken.what}: ${code}`, broken, 'source');
      brokenCheck(kit, ctx, `write check, ${broken.what}: ${code}`, broken, 'sink');
    }

    kit.sourceCheck('a read check under an aborted signal is cancelled', async (source, place) => {
      const controller = new AbortController();
      controller.abort();
      const err = await rejection(source.checkRead(linkedServiceOf(place.source), ctx(controller.signal)));
      kit.assertFailure(err, { code: 'cancelled' }, place.source, [], place.secrets);
    });

    kit.sinkCheck(
      'a write check under an aborted signal is cancelled and leaves nothing',
      async (sink, place) => {
        const controller = new AbortController();
        controller.abort();
        const probe = probeName();
        const err = await rejection(
          sink.checkWrite(linkedServiceOf(place.sink), ctx(controller.signal), probe),
        );
        kit.assertFailure(err, { code: 'cancelled' }, place.sink, [], place.secrets);
        assert.deepEqual(await place.probeLeftovers(probe), [], 'what the cancelled write check left');
      },
    );

    for (const side of ['source', 'sink'] as const) {
      kit.check(
        `aborting the signal while the store does not answer cancels the ${side === 'source' ? 'read' : 'write'} check promptly`,
        async (t) => {
          const connector = harness[side];
          if (!connector) return t.skip(`${harness.type} has no ${side} connector`);
          if (!harness.addressedTo) return t.skip(`${harness.type} has no network address to fall silent`);
          const server = await silentServer();
          try {
            const endpoint = linkedServiceOf(harness.addressedTo(server.port)[side]);
            const controller = new AbortController();
            const checking =
              side === 'source'
                ? harness.source!.checkRead(endpoint, ctx(controller.signal))
                : harness.sink!.checkWrite(endpoint, ctx(controller.signal), probeName());
            checking.catch(() => {});
            await server.connected;
            const abortedAt = performance.now();
            controller.abort();
            await kit.assertCancelledPromptly(checking, () => abortedAt, endpoint, []);
          } finally {
            await server.close();
          }
        },
      );
    }
  });
}

function brokenCheck(
  kit: ConformanceKit,
  ctx: () => ConnectorContext,
  name: string,
  broken: BrokenCase,
  side: 'source' | 'sink',
): void {
  const { harness } = kit;
  kit.check(name, async (t) => {
    if (broken.skip !== undefined) return t.skip(broken.skip);
    if (broken.inOptions === true) return t.skip('broken by its options, which a connection test ignores');
    if (!harness[side]) return t.skip(`${harness.type} has no ${side} connector`);
    assert.ok(broken.endpoints, `${broken.what}: a case that is not skipped builds endpoints`);
    const made = await broken.endpoints();
    const broke = made[side];
    assert.ok(broke, `${broken.what}: no ${side} endpoint`);
    const endpoint = linkedServiceOf(broke);
    const checking =
      side === 'source'
        ? harness.source!.checkRead(endpoint, ctx())
        : harness.sink!.checkWrite(endpoint, ctx(), probeName());
    const err = kit.assertFailure(
      await rejection(checking),
      EXPECTED_FAILURE[broken.failure],
      endpoint,
      made.mentions,
      made.secrets,
    );
    if (err.code.startsWith('store_')) {
      assert.ok(
        (err.hint ?? '').length > 0,
        `a store failure the operator can act on has a hint: ${err.message}`,
      );
    }
  });
}
