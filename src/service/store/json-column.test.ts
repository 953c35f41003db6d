/** JSON columns are read through one helper that checks what it parsed and names the row it came from. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from 'typebox';
import { JSON_COLUMNS, jsonColumn } from './json-column.ts';
import { FerryError } from '../../common/errors.ts';

const column = jsonColumn('tasks', 'work_json', Type.Object({ kind: Type.String(), index: Type.Integer() }));

function refusal(read: () => unknown): FerryError {
  try {
    read();
  } catch (err) {
    assert.ok(err instanceof FerryError, `a FerryError, got ${String(err)}`);
    return err;
  }
  assert.fail('the value was taken');
}

test('a stored value of the schema comes back as it was written', () => {
  assert.deepEqual(column.read('{"kind":"copy","index":3}', 'task_1'), { kind: 'copy', index: 3 });
});

test('text that is not JSON is an error naming table, column and row, and not quoting the value', () => {
  const err = refusal(() => column.read('{"kind":"copy","index":3', 'task_7'));
  assert.equal(err.code, 'internal');
  assert.equal(err.retryable, false, 'reading the row again finds the same value');
  assert.match(err.message, /^the store holds a malformed tasks\.work_json in row task_7: it is not JSON$/);
  assert.ok(err.hint);
  assert.ok(err.cause instanceof SyntaxError);
});

test('JSON of another shape is an error naming each wrong field', () => {
  const err = refusal(() => column.read('{"kind":1}', 'task_8'));
  assert.equal(err.code, 'internal');
  assert.match(err.message, /malformed tasks\.work_json in row task_8: /);
  assert.match(err.message, /index: is required/);
  assert.match(err.message, /kind: /);
});

test('an opened secret that is not an object is refused without its value in the message', () => {
  const err = refusal(() => JSON_COLUMNS.linkedServiceSecrets.read('"hunter2-password"', 'pg-main'));
  assert.match(err.message, /malformed linked_services\.secret_sealed in row pg-main/);
  assert.doesNotMatch(err.message, /hunter2/);
  const syntax = refusal(() => JSON_COLUMNS.linkedServiceSecrets.read('{"password": hunter2}', 'pg-main'));
  assert.doesNotMatch(syntax.message, /hunter2/);
});

test("nodes' metrics: none at registration, all after a heartbeat; peers' reach: a list", () => {
  assert.deepEqual(JSON_COLUMNS.nodeMetrics.read('{}', 'node_1'), {});
  const all = {
    cpuPercent: 1.5,
    memoryAvailableBytes: 1,
    memoryTotalBytes: 2,
    networkInBytesPerSec: 0,
    networkOutBytesPerSec: 0,
  };
  assert.deepEqual(JSON_COLUMNS.nodeMetrics.read(JSON.stringify(all), 'node_1'), all);
  const err = refusal(() => JSON_COLUMNS.nodeMetrics.read('{"cpuPercent":"high"}', 'node_1'));
  assert.match(err.message, /nodes\.metrics_json in row node_1: cpuPercent: /);
  assert.deepEqual(JSON_COLUMNS.nodeReach.read('[]', 'node_1'), []);
  assert.match(
    refusal(() => JSON_COLUMNS.nodeReach.read('{}', 'node_2')).message,
    /nodes\.reach_json in row node_2: /,
  );
});

test('every JSON column takes what Ferry writes to it', () => {
  const c = JSON_COLUMNS;
  assert.deepEqual(c.linkedServiceProperties.read('{"root":"/data","port":5}', 'fs'), {
    root: '/data',
    port: 5,
  });
  const activity = { name: 'a', source: { linkedService: 'x', table: 't' }, sink: { linkedService: 'y' } };
  assert.deepEqual(c.activitySpec.read(JSON.stringify(activity), 'act_1'), activity);
  const spec = { name: 'p', activities: [activity] };
  assert.deepEqual(c.pipelineSpec.read(JSON.stringify(spec), 'p'), spec);
  assert.deepEqual(c.taskWork.read('{"kind":"plan","watermark":null}', 'task_1'), {
    kind: 'plan',
    watermark: null,
  });
  const plan = { kind: 'plan', partitions: [{ kind: 'whole' }], finalize: true };
  assert.deepEqual(c.taskResult.read(JSON.stringify(plan), 'task_1'), plan);
  const report = { read: { ok: true, detail: 'listed /data (3 entries)', ms: 4 } };
  assert.deepEqual(c.connectionTestReport.read(JSON.stringify(report), 'ct_1'), report);
  assert.match(
    refusal(() => c.pipelineSpec.read('{"name":"p","activities":[]}', 'p')).message,
    /pipelines\.spec_json in row p: activities: /,
  );
});
