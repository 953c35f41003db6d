/**
 * Checks a pipeline before it is stored: its shape, then each activity against the store contract of
 * its linked services. Every error names the field, e.g. `activities/0/source/table: is required`.
 */
import type { Kysely } from 'kysely';
import type { Schema } from './store/schema.ts';
import { PipelineSpec, type PipelineSpecT } from '../protocol/pipeline.ts';
import { STORES, isStoreType, pathProblem } from '../protocol/stores.ts';
import { validator } from '../protocol/validate.ts';
import { FerryError } from '../common/errors.ts';
import type { TSchema } from 'typebox';

const pipelineValidator = validator(PipelineSpec);
const endpointValidators = new Map<TSchema, ReturnType<typeof validator>>();

function endpointValidator(schema: TSchema): ReturnType<typeof validator> {
  let v = endpointValidators.get(schema);
  if (!v) endpointValidators.set(schema, (v = validator(schema)));
  return v;
}

export async function validatePipeline(db: Kysely<Schema>, input: unknown): Promise<PipelineSpecT> {
  const spec = pipelineValidator.parse(input, 'pipeline');
  const seen = new Set<string>();
  for (const [i, activity] of spec.activities.entries()) {
    const at = `activities/${i}`;
    if (seen.has(activity.name))
      throw new FerryError(
        'bad_request',
        `pipeline: ${at}/name: "${activity.name}" is used by two activities`,
      );
    seen.add(activity.name);
    const gateways = new Set<string>();
    const kinds: Partial<Record<'source' | 'sink', 'files' | 'table'>> = {};
    for (const role of ['source', 'sink'] as const) {
      const endpoint = activity[role];
      const ls = await db
        .selectFrom('linked_services')
        .select(['type', 'gateway_id'])
        .where('name', '=', endpoint.linkedService)
        .executeTakeFirst();
      if (!ls)
        throw new FerryError(
          'bad_request',
          `pipeline: ${at}/${role}/linkedService: linked service "${endpoint.linkedService}" does not exist`,
        );
      if (!isStoreType(ls.type))
        throw new FerryError(
          'bad_request',
          `pipeline: ${at}/${role}/linkedService: unknown store type ${ls.type}`,
        );
      const schema = STORES[ls.type][role];
      if (!schema)
        throw new FerryError(
          'bad_request',
          `pipeline: ${at}/${role}: a ${ls.type} linked service cannot be a ${role} yet`,
        );
      endpointValidator(schema).parse(endpoint, 'pipeline', `${at}/${role}`);
      const problem = pathProblem(role, endpoint);
      if (problem) throw new FerryError('bad_request', `pipeline: ${at}/${role}/${problem}`);
      gateways.add(ls.gateway_id);
      kinds[role] = STORES[ls.type].kind;
    }
    if (
      kinds.sink === 'table' &&
      kinds.source === 'files' &&
      (activity.source as Record<string, unknown>)['format'] === undefined
    ) {
      throw new FerryError(
        'bad_request',
        `pipeline: ${at}/source/format: the sink loads a table, so the source's files need a format to be read as one (csv, jsonl or parquet)`,
      );
    }
    if (gateways.size > 1) {
      throw new FerryError(
        'bad_request',
        `pipeline: ${at}: source and sink use linked services on different gateways; one activity runs on one gateway`,
      );
    }
  }
  return spec;
}
