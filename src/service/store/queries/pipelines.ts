/** Pipelines as applied: the validated spec, versioned on each change. */
import type { Kysely } from 'kysely';
import type { PipelinesTable, Schema } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';
import { newId } from '../../../common/crypto.ts';
import type { PipelineSpecT } from '../../../protocol/pipeline.ts';

export async function applyPipeline(
  db: Kysely<Schema>,
  spec: PipelineSpecT,
  now: number,
): Promise<{ row: PipelinesTable; changed: boolean }> {
  const json = JSON.stringify(spec);
  const existing = await db
    .selectFrom('pipelines')
    .selectAll()
    .where('name', '=', spec.name)
    .executeTakeFirst();
  if (existing?.spec_json === json) return { row: existing, changed: false };
  const row: PipelinesTable = {
    id: existing?.id ?? newId('pl'),
    name: spec.name,
    spec_json: json,
    version: (existing?.version ?? 0) + 1,
    created_at: existing?.created_at ?? now,
    updated_at: now,
  };
  if (existing) await db.updateTable('pipelines').set(row).where('id', '=', existing.id).execute();
  else await db.insertInto('pipelines').values(row).execute();
  return { row, changed: true };
}

export async function getPipeline(db: Kysely<Schema>, name: string): Promise<PipelinesTable> {
  const row = await db.selectFrom('pipelines').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row)
    throw new FerryError('not_found', `pipeline "${name}" does not exist`, {
      hint: 'apply it with `ferry pipeline apply -f FILE`',
    });
  return row;
}

export async function listPipelines(db: Kysely<Schema>): Promise<PipelinesTable[]> {
  return db.selectFrom('pipelines').selectAll().orderBy('name').execute();
}

export async function deletePipeline(db: Kysely<Schema>, name: string): Promise<void> {
  await getPipeline(db, name);
  await db.deleteFrom('pipelines').where('name', '=', name).execute();
}
