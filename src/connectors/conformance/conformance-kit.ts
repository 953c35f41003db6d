/**
 * What the conformance checks share for one store: the contexts a node would pass, the way a check
 * is registered (skipped without the connector it needs, TODO for a known gap), and the steps and
 * assertions the checks are made of. Created once per store by describeConformance.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { it, type TestContext } from 'node:test';
import { inspect } from 'node:util';
import { FerryError } from '../../common/errors.ts';
import { SECRET_PROPERTIES } from '../../protocol/stores.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type {
  ActivityContext,
  AttemptContext,
  PlanContext,
  SinkConnector,
  SinkWriter,
  SourceConnector,
  StagedObject,
} from '../connector.ts';
import {
  COLUMNS,
  csvRecords,
  expectedStaged,
  partName,
  stagings,
  streamOf,
  summary,
} from './conformance-data.ts';
import type { ConformanceHarness, ConformancePlace, Dataset } from './conformance-harness.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

/** How long a cancelled read or stage may take to fail once the signal aborts. */
export const PROMPT_MS = 3000;
/** A check that hangs (two attempts waiting on each other) fails instead of stalling the file. */
const CHECK_TIMEOUT_MS = 30_000;

/** One activity run: its attempts share the run id, which table sinks record in their ledger. */
export interface Run {
  runId: string;
}

export interface ExpectedFailure {
  code: FerryError['code'];
  /** Checked when given. */
  retryable?: boolean;
}

export class ConformanceKit {
  readonly harness: ConformanceHarness;
  /** Names of the checks registered so far, to find known gaps that name none. */
  readonly registered = new Set<string>();
  /** The suite's own upload budget, shared by its attempts as a node's is. */
  readonly uploadBudget = new UploadBudget();
  #runs = 0;

  constructor(harness: ConformanceHarness) {
    this.harness = harness;
  }

  get kind(): ConformanceHarness['kind'] {
    return this.harness.kind;
  }

  newRun(): Run {
    return { runId: `run-${process.pid}-${++this.#runs}` };
  }

  planCtx(signal = new AbortController().signal): PlanContext {
    return { signal, allowedRoots: this.harness.allowedRoots(), watermark: null };
  }

  activityCtx(run: Run, signal = new AbortController().signal): ActivityContext {
    return { signal, allowedRoots: this.harness.allowedRoots(), runId: run.runId, activity: 'conformance' };
  }

  /** Attempt `attemptId` of the run's task `taskIndex`; its attempts share the task id. */
  attemptCtx(
    run: Run,
    taskIndex: number,
    attemptId: string,
    signal = new AbortController().signal,
  ): AttemptContext {
    return {
      ...this.activityCtx(run, signal),
      taskId: `t${taskIndex}`,
      attemptId,
      taskIndex,
      uploadBudget: this.uploadBudget,
    };
  }

  /** Registers a check: run as TODO when the harness lists it as a known gap. */
  check(name: string, body: (t: TestContext) => Promise<void>): void {
    this.registered.add(name);
    const gap = this.harness.knownGaps?.[name];
    const options =
      gap === undefined
        ? { timeout: CHECK_TIMEOUT_MS }
        : { timeout: CHECK_TIMEOUT_MS, todo: `known gap: ${gap}` };
    it(name, options, body);
  }

  /** A check that needs the source connector (reported skipped without one), in a fresh place. */
  sourceCheck(
    name: string,
    body: (source: SourceConnector, place: ConformancePlace, t: TestContext) => Promise<void>,
  ): void {
    this.check(name, async (t) => {
      const source = this.harness.source;
      if (!source) return t.skip(`${this.harness.type} has no source connector`);
      await body(source, await this.harness.place(), t);
    });
  }

  /** A check that needs the sink connector (reported skipped without one), in a fresh place. */
  sinkCheck(
    name: string,
    body: (sink: SinkConnector, place: ConformancePlace, t: TestContext) => Promise<void>,
  ): void {
    this.check(name, async (t) => {
      const sink = this.harness.sink;
      if (!sink) return t.skip(`${this.harness.type} has no sink connector`);
      await body(sink, await this.harness.place(), t);
    });
  }

  /** Every partition read to its end: the dataset it holds, checked object by object on the way. */
  async readAll(
    source: SourceConnector,
    endpoint: ResolvedEndpointT,
    partitions: PartitionT[],
    run: Run,
  ): Promise<Dataset> {
    const files: { name: string; data: Buffer }[] = [];
    const rows: string[] = [];
    for (const [index, partition] of partitions.entries()) {
      for await (const object of source.read(endpoint, partition, this.attemptCtx(run, index, 'a1'))) {
        const chunks: Buffer[] = [];
        for await (const chunk of object.stream) chunks.push(Buffer.from(chunk as Buffer));
        const data = Buffer.concat(chunks);
        if (this.kind === 'files') {
          assert.equal(object.columns, undefined, `${object.name}: a file read as-is has no columns`);
          assert.equal(object.rows(), undefined, `${object.name}: a file read as-is counts no rows`);
          files.push({ name: object.name, data });
          continue;
        }
        assert.equal(object.name, partName(index), 'a table partition is named for its task');
        assert.deepEqual(
          object.columns?.map((c) => [c.name, c.type]),
          COLUMNS.map((c) => [c.name, c.type]),
          'the columns of a table partition',
        );
        const [header, ...body] = csvRecords(data.toString('utf8'));
        assert.equal(header, COLUMNS.map((c) => c.name).join(','), 'the header row');
        assert.equal(object.rows(), body.length, 'rows() once the stream has ended');
        rows.push(...body);
      }
    }
    return this.kind === 'files' ? { kind: 'files', files } : { kind: 'table', columns: COLUMNS, rows };
  }

  /** The plan task's part for the sink: a table sink creates its table from the columns. */
  async prepare(sink: SinkConnector, endpoint: ResolvedEndpointT, run: Run): Promise<void> {
    if (!sink.prepare) return;
    const columns = this.kind === 'table' ? COLUMNS : undefined;
    const preparation = await sink.prepare(endpoint, columns, this.activityCtx(run));
    assert.equal(
      preparation.finalize,
      false,
      'a conformance sink endpoint publishes at commit, with no finalize',
    );
  }

  /** Stages the dataset as task `taskIndex` would, checking the figures each stage reports. */
  async stageAll(writer: SinkWriter, data: Dataset, taskIndex: number): Promise<StagedObject[]> {
    const staged: StagedObject[] = [];
    for (const s of stagings(data, taskIndex)) {
      const got = await writer.stage({
        name: s.name,
        stream: streamOf(s.data),
        ...(s.columns ? { columns: s.columns } : {}),
      });
      const expected = expectedStaged(s);
      if (this.kind === 'files') assert.deepEqual(got, expected, `staged ${s.name}`);
      else {
        // A table sink may name its output after the table; the figures are what verification compares.
        assert.ok(got.name !== '', 'a staged partition has a name');
        assert.deepEqual([got.bytes, got.sha256, got.rows], [expected.bytes, expected.sha256, expected.rows]);
      }
      staged.push(got);
    }
    return staged;
  }

  /** The sink holds exactly `expected`, as a reader outside the writer sees it. */
  async assertVisible(place: ConformancePlace, expected: Dataset, why: string): Promise<void> {
    assert.deepEqual(summary(await place.visible()), summary(expected), why);
  }

  /**
   * The rules every error keeps: a FerryError of the expected code (and retry decision), whose
   * message starts with the store type, names the linked service and `mentions`, ends with the
   * operation in parentheses when the store was reached or the work cancelled, and shows none of
   * the endpoint's secret properties nor `secrets`, in its message or its hint.
   */
  assertFailure(
    err: unknown,
    expected: ExpectedFailure,
    endpoint: ResolvedEndpointT,
    mentions: string[],
    secrets: string[],
  ): FerryError {
    const type = this.harness.type;
    assert.ok(err instanceof FerryError, `expected a FerryError, got ${inspect(err)}`);
    assert.equal(err.code, expected.code, err.message);
    if (expected.retryable !== undefined)
      assert.equal(err.retryable, expected.retryable, `retryable: ${err.message}`);
    assert.ok(err.message.startsWith(`${type} `), `the message starts with the store type: ${err.message}`);
    assert.ok(
      err.message.includes(JSON.stringify(endpoint.linkedService)),
      `the message names the linked service: ${err.message}`,
    );
    for (const m of mentions) assert.ok(err.message.includes(m), `the message names ${m}: ${err.message}`);
    // Refusals of bad input (bad_request, forbidden, conflict) are about the request, not a store operation.
    if (err.code.startsWith('store_') || err.code === 'cancelled') {
      assert.match(err.message, /\([^()]+\)$/, `the message ends with the operation: ${err.message}`);
    }
    for (const secret of this.#secrets(endpoint, secrets)) {
      assert.ok(!err.message.includes(secret), `the message shows a secret: ${err.message}`);
      assert.ok(!(err.hint ?? '').includes(secret), `the hint shows a secret: ${err.hint}`);
    }
    return err;
  }

  /** Rejects with a 'cancelled' FerryError within PROMPT_MS of `abortedAt`. */
  async assertCancelledPromptly(
    promise: Promise<unknown>,
    abortedAt: () => number,
    endpoint: ResolvedEndpointT,
    secrets: string[],
  ): Promise<void> {
    const err = await rejection(promise);
    const took = performance.now() - abortedAt();
    this.assertFailure(err, { code: 'cancelled' }, endpoint, [], secrets);
    assert.ok(took < PROMPT_MS, `cancelled ${Math.round(took)} ms after the signal aborted`);
  }

  #secrets(endpoint: ResolvedEndpointT, extra: string[]): string[] {
    const found = [...extra];
    for (const key of SECRET_PROPERTIES[this.harness.type]) {
      const value = endpoint.properties[key];
      if (typeof value === 'string') found.push(value);
    }
    // Very short values would match ordinary words; no real secret is that short.
    return found.filter((s) => s.length >= 4);
  }
}

/** What the promise rejected with; a failed assertion if it fulfilled. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a failure');
}
