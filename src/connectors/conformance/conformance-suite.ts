/**
 * The connector conformance suite: the rules of src/connectors/connector.ts, checked against a real
 * store through its harness (conformance-harness.ts). Every store runs the same checks:
 *
 * - read: a plan and its partitions read back exactly what was stored (bytes, or rows as text), and
 *   nothing from an empty place; a partition of a foreign kind is a bad_request; an object gone
 *   since the plan is store_object_missing naming it;
 * - write: a commit publishes exactly what was staged, and the staged figures say so; nothing is
 *   visible before commit (seen from outside the writer); abort publishes nothing and leaves nothing,
 *   and the aborted attempt refuses further work (conflict); a second committed attempt of a task replaces the first, and a retry started while a stale
 *   attempt still runs adds no copy; a failing source fails the stage with its own error; a files
 *   sink refuses names that escape it;
 * - cancel: an aborted signal cancels a plan, a read mid-stream and a stage mid-stream promptly,
 *   and a commit after it, with a 'cancelled' FerryError and nothing published;
 * - errors: each broken endpoint fails with the catalogue code and retry decision of its failure,
 *   and a message that starts with the store type, names the linked service, the object and the
 *   operation, and shows no secret;
 * - connection test: the read and write checks of `ferry linked-service test` pass on a good
 *   linked service and leave nothing behind, fail on each broken one as a copy would (with a hint),
 *   and are cancelled promptly by the signal, even while the store does not answer.
 *
 * A check a store cannot take (no sink yet, a limit of its emulator) is reported skipped with the
 * reason the harness gives, never passed. A check a connector fails today, listed by its harness as
 * a known gap with what to fix, runs as TODO until the fix lands with the entry's removal.
 *
 * Adding a store: a `<store>-harness.ts` (conformance-harness.ts says what it provides) and a
 * `<store>.conformance.test.ts` that calls describeConformance with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cancelChecks } from './cancel-checks.ts';
import { ConformanceKit } from './conformance-kit.ts';
import { connectionChecks } from './connection-checks.ts';
import type { ConformanceHarness } from './conformance-harness.ts';
import { errorChecks } from './error-checks.ts';
import { readChecks } from './read-checks.ts';
import { writeChecks } from './write-checks.ts';

/** Registers every conformance check (node:test) for the store of `harness`. */
export function describeConformance(harness: ConformanceHarness): void {
  const kit = new ConformanceKit(harness);
  describe(`${harness.type} connector conformance`, () => {
    before(() => harness.start());
    after(() => harness.stop());
    readChecks(kit);
    writeChecks(kit);
    cancelChecks(kit);
    errorChecks(kit);
    connectionChecks(kit);
    const gaps = Object.keys(harness.knownGaps ?? {});
    if (gaps.length > 0) {
      it('every known gap names a check', () => {
        // A renamed check would otherwise leave its gap unused, and the check failing unseen.
        assert.deepEqual(
          gaps.filter((g) => !kit.registered.has(g)),
          [],
        );
      });
    }
  });
}
