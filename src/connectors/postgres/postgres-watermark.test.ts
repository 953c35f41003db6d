import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from 'pg';
import type { PartitionT, ResolvedEndpointT, WatermarkWindowT } from '../../protocol/task.ts';
import type { SourcePlan } from '../connector.ts';
import { postgresSource } from './postgres-connector.ts';
import {
  attempt,
  createTestSchema,
  endpoint,
  only,
  planCtx,
  rejectsWith,
  text,
  type TestSchema,
} from './postgres-test-kit.ts';

let db: TestSchema;
let admin: Client;
let schema: string;

/** The watermark of row `id` (a number, or SQL for one): one minute and a microsecond apart. */
const at = (id: number | string): string =>
  `timestamptz '2025-01-01 00:00:00+00' + ${id} * interval '1 minute 0.000001 second'`;
const atText = (id: number): string => {
  const micros = BigInt(Date.UTC(2025, 0, 1)) * 1000n + BigInt(id) * 60_000_001n;
  const iso = new Date(Number(micros / 1000n)).toISOString().replace('T', ' ').slice(0, 19);
  const fraction = String(micros % 1_000_000n)
    .padStart(6, '0')
    .replace(/0+$/, '');
  return `${iso}${fraction ? `.${fraction}` : ''}+00`;
};

before(async () => {
  db = await createTestSchema('pgwm');
  ({ admin, schema } = db);
  await admin.query(`
    CREATE TABLE ${schema}.events (id bigint PRIMARY KEY, at timestamptz, what text);
    INSERT INTO ${schema}.events SELECT g, ${at('g')}, 'e' || g FROM generate_series(1, 100) g;
    INSERT INTO ${schema}.events VALUES (0, NULL, 'no watermark value');
    CREATE TABLE ${schema}.floats (id int, f float8);
    INSERT INTO ${schema}.floats VALUES (1, 0.1), (2, 0.1::float8 + 0.2::float8);
    CREATE TABLE ${schema}.nothing (id int, at timestamptz);
  `);
});

after(async () => {
  await db.drop();
});

function events(extra: Record<string, unknown> = {}): ResolvedEndpointT {
  return endpoint({ table: `${schema}.events`, columns: ['id'], watermarkColumn: 'at', ...extra });
}

/** Reads every partition of a plan within its window; the ids seen, in order. */
async function readIds(source: ResolvedEndpointT, plan: SourcePlan, window = plan.window): Promise<number[]> {
  const ids: number[] = [];
  for (const [index, partition] of plan.partitions.entries()) {
    const object = await only(
      postgresSource.read(source, partition, attempt(index, window ? { window } : {})),
    );
    const body = (await text(object)).split('\n').slice(1, -1).map(Number);
    assert.equal(object.rows(), body.length);
    ids.push(...body);
  }
  return ids.sort((a, b) => a - b);
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

// The tests run in order and build on each other's rows: 1..100, then 101..151.
describe('postgres incremental copy', () => {
  it('copies everything on the first run, then only rows above the watermark, then nothing', async () => {
    const first = await postgresSource.plan(events(), planCtx());
    assert.deepEqual(first, {
      partitions: [{ kind: 'whole' }],
      window: { column: 'at', after: null, upTo: atText(100) },
    });
    // A row without a watermark value is never copied.
    assert.deepEqual(await readIds(events(), first), range(1, 100));

    await admin.query(`INSERT INTO ${schema}.events SELECT g, ${at('g')}, 'e' || g
                         FROM generate_series(101, 150) g`);
    const second = await postgresSource.plan(events(), planCtx(undefined, first.window.upTo));
    assert.deepEqual(second.window, { column: 'at', after: atText(100), upTo: atText(150) });
    // A row added after the plan, above its window, waits for the next run.
    await admin.query(`INSERT INTO ${schema}.events VALUES (151, ${at(151)}, 'late')`);
    assert.deepEqual(await readIds(events(), second), range(101, 150));

    const third = await postgresSource.plan(events(), planCtx(undefined, second.window.upTo));
    assert.deepEqual(third.window, { column: 'at', after: atText(150), upTo: atText(151) });
    assert.deepEqual(await readIds(events(), third), [151]);

    const fourth = await postgresSource.plan(events(), planCtx(undefined, third.window.upTo));
    assert.deepEqual(fourth, {
      partitions: [],
      window: { column: 'at', after: atText(151), upTo: atText(151) },
    });
  });

  it('splits only the window into ranges of the partition column', async () => {
    const source = events({ partitionColumn: 'id', partitions: 4 });
    const plan = await postgresSource.plan(source, planCtx(undefined, atText(100)));
    assert.equal(plan.window?.after, atText(100));
    const ranges = plan.partitions.filter(
      (p): p is Extract<PartitionT, { kind: 'range' }> => p.kind === 'range',
    );
    assert.equal(ranges.length, 4);
    // Cuts between the window's smallest and largest id (101..151), not the table's (0..151).
    const cuts = ranges.slice(1).map((r) => Number(r.lo));
    assert.ok(
      cuts.every((c) => c > 101 && c <= 151),
      JSON.stringify(cuts),
    );
    assert.deepEqual(await readIds(source, plan), range(101, 151));
  });

  it('keeps float high marks exact, so the row at the mark is copied once', async () => {
    const source = endpoint({ table: `${schema}.floats`, columns: ['id'], watermarkColumn: 'f' });
    const first = await postgresSource.plan(source, planCtx());
    assert.equal(first.window?.upTo, '0.30000000000000004');
    assert.deepEqual(await readIds(source, first), [1, 2]);
    const next = await postgresSource.plan(source, planCtx(undefined, first.window.upTo));
    assert.deepEqual(next.partitions, []);
  });

  it('plans nothing for an empty table and reads nothing from an empty window', async () => {
    const source = endpoint({ table: `${schema}.nothing`, watermarkColumn: 'at' });
    assert.deepEqual(await postgresSource.plan(source, planCtx()), {
      partitions: [],
      window: { column: 'at', after: null, upTo: null },
    });
    const empty: WatermarkWindowT = { column: 'at', after: null, upTo: null };
    assert.deepEqual(await readIds(events(), { partitions: [{ kind: 'whole' }] }, empty), []);
  });

  it('refuses a watermark column that cannot be ordered as a high mark, or that is missing', async () => {
    await rejectsWith(
      postgresSource.plan(events({ watermarkColumn: 'what' }), planCtx()),
      'bad_request',
      /watermarkColumn "what" has type text/,
    );
    await rejectsWith(
      postgresSource.plan(events({ watermarkColumn: 'nope' }), planCtx()),
      'store_object_missing',
      /column "nope" of relation .* does not exist \(check table\)/,
    );
    await rejectsWith(
      postgresSource.plan(events(), planCtx(undefined, 'not a time')),
      'store_error',
      /invalid input syntax for type timestamp with time zone: "not a time" \(find watermark\)/,
    );
  });
});
