/** /api/v1/pipelines and /api/v1/runs: apply pipelines, start runs, follow them task by task. */
import { Type } from 'typebox';
import type { App } from '../app.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema } from '../../protocol/stores.ts';
import { validatePipeline } from '../pipeline-validation.ts';
import { applyPipeline, deletePipeline, getPipeline, listPipelines } from '../store/queries/pipelines.ts';
import { startRun } from '../store/queries/start-run.ts';
import { getRunDetail, getRunSummary, listRuns } from '../store/queries/runs.ts';
import { runDetailView, runSummaryView, runView } from './views.ts';
import type { PipelineSpecT } from '../../protocol/pipeline.ts';

const PIPELINE_BODY_LIMIT = 16 * 1024 * 1024;

export function pipelineRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;
  const pipelineView = (p: { name: string; version: number; spec_json: string; updated_at: number }) => ({
    name: p.name,
    version: p.version,
    updatedAt: new Date(p.updated_at).toISOString(),
    spec: JSON.parse(p.spec_json) as PipelineSpecT,
  });

  // The body is checked by validatePipeline, which names the offending field. A pipeline of many
  // activities may be larger than the service's default body limit.
  app.put(
    '/api/v1/pipelines',
    { schema: { tags: ['pipelines'], body: Type.Unknown() }, bodyLimit: PIPELINE_BODY_LIMIT },
    async (req) => {
      const spec = await validatePipeline(db, req.body);
      const { row, changed } = await applyPipeline(db, spec, ctx.now());
      return { ...pipelineView(row), changed };
    },
  );

  app.get('/api/v1/pipelines', { schema: { tags: ['pipelines'] } }, async () => ({
    pipelines: (await listPipelines(db)).map(pipelineView),
  }));

  app.get(
    '/api/v1/pipelines/:name',
    { schema: { tags: ['pipelines'], params: Type.Object({ name: NameSchema }) } },
    async (req) => pipelineView(await getPipeline(db, req.params.name)),
  );

  app.delete(
    '/api/v1/pipelines/:name',
    { schema: { tags: ['pipelines'], params: Type.Object({ name: NameSchema }) } },
    async (req, reply) => {
      await deletePipeline(db, req.params.name);
      void reply.status(204);
    },
  );

  app.post(
    '/api/v1/pipelines/:name/runs',
    { schema: { tags: ['runs'], params: Type.Object({ name: NameSchema }) } },
    async (req, reply) => {
      const runId = await startRun(db, req.params.name, ctx.now());
      const gateways = await db
        .selectFrom('activity_runs')
        .select('gateway_id')
        .where('run_id', '=', runId)
        .execute();
      for (const g of gateways) ctx.notifier.notify(g.gateway_id);
      void reply.status(201);
      return runDetailView(await getRunDetail(db, runId));
    },
  );

  app.get(
    '/api/v1/runs',
    {
      schema: {
        tags: ['runs'],
        querystring: Type.Object({
          pipeline: Type.Optional(NameSchema),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
      },
    },
    async (req) => ({ runs: (await listRuns(db, req.query.limit ?? 50, req.query.pipeline)).map(runView) }),
  );

  app.get(
    '/api/v1/runs/:id',
    {
      schema: {
        tags: ['runs'],
        params: Type.Object({ id: Type.String() }),
        // tasks=false: progress only, cheap to poll during a run of many tasks.
        querystring: Type.Object({ tasks: Type.Optional(Type.Boolean()) }),
      },
    },
    async (req) =>
      req.query.tasks === false
        ? runSummaryView(await getRunSummary(db, req.params.id))
        : runDetailView(await getRunDetail(db, req.params.id)),
  );
}
