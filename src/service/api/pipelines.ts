/** /api/v1/pipelines and /api/v1/runs: apply pipelines, start runs, follow them task by task. */
import { Type } from 'typebox';
import { OPERATOR, READER, type App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema } from '../../protocol/stores.ts';
import { validatePipeline } from '../pipeline-validation.ts';
import { applyPipeline, deletePipeline, getPipeline, listPipelines } from '../store/queries/pipelines.ts';
import { startRun } from '../store/queries/start-run.ts';
import { getRunDetail, getRunSummary, listRuns, runGateways } from '../store/queries/runs.ts';
import { runDetailView, runSummaryView, runView } from './views.ts';
import { JSON_COLUMNS } from '../store/json-column.ts';
import {
  Pipeline,
  PipelineApplied,
  PipelineList,
  PipelineSpecSchema,
  RunDetail,
  RunList,
  RunSummary,
  responses,
} from './schemas.ts';

const PIPELINE_BODY_LIMIT = 16 * 1024 * 1024;

export function pipelineRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;
  const pipelineView = (p: { name: string; version: number; spec_json: string; updated_at: number }) => ({
    name: p.name,
    version: p.version,
    updatedAt: new Date(p.updated_at).toISOString(),
    spec: JSON_COLUMNS.pipelineSpec.read(p.spec_json, p.name),
  });

  // The body is documented as a PipelineSpec and checked by validatePipeline (not by the route's
  // validator), which checks it against the linked services' stores too and names the offending
  // field. A pipeline of many activities may be larger than the service's default body limit.
  app.put(
    '/api/v1/pipelines',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'applyPipeline',
        summary: 'Create or update a pipeline',
        body: PipelineSpecSchema,
        response: responses({ 200: ['The stored pipeline', PipelineApplied] }),
      },
      validatorCompiler: () => (value: unknown) => ({ value }),
      bodyLimit: PIPELINE_BODY_LIMIT,
    },
    async (req) => {
      const spec = await validatePipeline(db, req.body);
      const { row, changed } = await applyPipeline(db, spec, ctx.now());
      return { ...pipelineView(row), changed };
    },
  );

  const listSchema = {
    tags: ['pipelines'],
    operationId: 'listPipelines',
    summary: 'List the pipelines',
    response: responses({ 200: ['The pipelines', PipelineList] }),
  };
  app.get('/api/v1/pipelines', { schema: listSchema, config: READER }, async () => ({
    pipelines: (await listPipelines(db)).map(pipelineView),
  }));

  app.get(
    '/api/v1/pipelines/:name',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'getPipeline',
        summary: 'Show a pipeline',
        params: Type.Object({ name: NameSchema }),
        response: responses({ 200: ['The pipeline', Pipeline] }),
      },
      config: READER,
    },
    async (req) => pipelineView(await getPipeline(db, req.params.name)),
  );

  app.delete(
    '/api/v1/pipelines/:name',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'deletePipeline',
        summary: 'Delete a pipeline',
        params: Type.Object({ name: NameSchema }),
        response: responses({ 204: 'Deleted' }),
      },
    },
    async (req, reply) => {
      await deletePipeline(db, req.params.name);
      void reply.status(204);
    },
  );

  app.post(
    '/api/v1/pipelines/:name/runs',
    {
      schema: {
        tags: ['runs'],
        operationId: 'startRun',
        summary: 'Start a run of a pipeline',
        params: Type.Object({ name: NameSchema }),
        response: responses({ 201: ['The new run', RunDetail] }),
      },
      config: OPERATOR,
    },
    async (req, reply) => {
      const runId = await startRun(db, req.params.name, ctx.now());
      for (const gatewayId of await runGateways(db, runId)) ctx.notifier.notify(gatewayId);
      void reply.status(201);
      return runDetailView(await getRunDetail(db, runId));
    },
  );

  app.get(
    '/api/v1/runs',
    {
      schema: {
        tags: ['runs'],
        operationId: 'listRuns',
        summary: 'List runs, newest first',
        querystring: Type.Object({
          pipeline: Type.Optional(NameSchema),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
        response: responses({ 200: ['The runs', RunList] }),
      },
      config: READER,
    },
    async (req) => ({ runs: (await listRuns(db, req.query.limit ?? 50, req.query.pipeline)).map(runView) }),
  );

  app.get(
    '/api/v1/runs/:id',
    {
      schema: {
        tags: ['runs'],
        operationId: 'getRun',
        summary: 'Show a run',
        params: Type.Object({ id: Type.String() }),
        // tasks=false: progress only, cheap to poll during a run of many tasks.
        querystring: Type.Object({
          tasks: Type.Optional(
            Type.Boolean({ description: 'false: the run and its progress only, without its tasks' }),
          ),
        }),
        response: responses({
          200: [
            'The run with its tasks (a RunDetail), or without them when tasks=false (a RunSummary)',
            Type.Union([RunDetail, RunSummary]),
          ],
        }),
      },
      config: READER,
    },
    async (req) =>
      req.query.tasks === false
        ? runSummaryView(await getRunSummary(db, req.params.id))
        : runDetailView(await getRunDetail(db, req.params.id)),
  );
}
