/**
 * What the PostgreSQL connector's test files share: a schema of their own on the real server
 * (PostgreSQL at 127.0.0.1:5432, user postgres, trust auth, database `test`), endpoints and contexts,
 * and small helpers to read objects and wait for the server. Not a test file itself.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import type { ResolvedEndpointT, WatermarkWindowT } from '../../protocol/task.ts';
import type { ActivityContext, AttemptContext, PlanContext, SourceObject } from '../connector.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

export const SERVER = { host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres' };

export interface TestSchema {
  admin: Client;
  /** `ferry_<prefix>_<random>`: plain, so it needs no quoting in test SQL. */
  schema: string;
  suffix: string;
  /** Terminates the schema's leftover backends, drops the schema and the given roles, disconnects. */
  drop(roles?: string[]): Promise<void>;
}

export async function createTestSchema(prefix: string): Promise<TestSchema> {
  const suffix = randomBytes(4).toString('hex');
  const schema = `ferry_${prefix}_${suffix}`;
  const admin = new Client(SERVER);
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  return {
    admin,
    schema,
    suffix,
    async drop(roles = []) {
      // A failed test may leave a COPY open, whose lock would make DROP SCHEMA wait forever.
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND (position($1 in query) > 0 OR position($2 in query) > 0)`,
        [`"${schema}"`, schema],
      );
      await admin.query(`SET lock_timeout = '10s'`);
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    },
  };
}

export function endpoint(
  options: Record<string, unknown>,
  properties: Record<string, unknown> = {},
  linkedService = 'pg1',
): ResolvedEndpointT {
  return { type: 'postgres', linkedService, properties: { ...SERVER, ...properties }, options };
}

export function planCtx(signal = new AbortController().signal, watermark: string | null = null): PlanContext {
  return { signal, allowedRoots: [], watermark };
}

export function activityCtx(
  runId = 'run1',
  activity = 'act',
  signal = new AbortController().signal,
): ActivityContext {
  return { signal, allowedRoots: [], runId, activity };
}

export function attempt(
  taskIndex: number,
  options: { signal?: AbortSignal; window?: WatermarkWindowT; runId?: string; attemptId?: string } = {},
): AttemptContext {
  return {
    signal: options.signal ?? new AbortController().signal,
    allowedRoots: [],
    uploadBudget: new UploadBudget(),
    runId: options.runId ?? 'run1',
    activity: 'act',
    taskId: `t${taskIndex}`,
    attemptId: options.attemptId ?? 'a1',
    taskIndex,
    ...(options.window ? { window: options.window } : {}),
  };
}

export async function only(objects: AsyncIterable<SourceObject>): Promise<SourceObject> {
  const all: SourceObject[] = [];
  for await (const o of objects) all.push(o);
  assert.equal(all.length, 1);
  const [object] = all;
  assert.ok(object);
  return object;
}

export async function text(object: Pick<SourceObject, 'stream'>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of object.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export { rejectsWith } from '../../../test/helpers/rejects-with.ts';

export function csvStream(csv: string | Buffer): Readable {
  return Readable.from([Buffer.from(csv)]);
}

/** Backends other than the admin's whose current or last query contains `fragment`. */
export async function backends(admin: Client, fragment: string, state?: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE pid <> pg_backend_pid() AND position($1 in query) > 0 AND ($2::text IS NULL OR state = $2)`,
    [fragment, state ?? null],
  );
  return rows[0]?.n ?? 0;
}

/** Polls a condition the server reaches on its own schedule (a backend exiting), up to a deadline. */
export async function eventually(
  check: () => Promise<boolean>,
  what: string,
  deadlineMs = 5000,
): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
