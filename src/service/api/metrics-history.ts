/**
 * /api/v1/gateways/:name/nodes/:node/metrics and /api/v1/gateways/:name/advice: a node's metrics
 * history over a window (for charts), and the scale advisor's advice over a window (advice.ts).
 * Both read the history the sweep writes (src/service/metrics-history.ts); readers may call them.
 */
import { Type } from 'typebox';
import { READER, type App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema } from '../../protocol/stores.ts';
import { GatewayAdvice, HistoryWindow, NodeMetricsHistory, responses } from './schemas.ts';
import { getGatewayByName } from '../store/queries/gateways.ts';
import { getNodeByName } from '../store/queries/nodes.ts';
import {
  listGatewayNodeHistory,
  listNodeHistory,
  listQueueHistory,
} from '../store/queries/metrics-history.ts';
import { countLostAttempts } from '../store/queries/lost-attempts.ts';
import { averageNodePoints } from '../history-points.ts';
import { adviseScale } from '../advice.ts';

type Window = '1h' | '24h' | '7d';
/** Each window's length and the spacing of the points it returns. */
const WINDOWS: Record<Window, { ms: number; resolutionS: number }> = {
  '1h': { ms: 3_600_000, resolutionS: 10 },
  '24h': { ms: 86_400_000, resolutionS: 300 },
  '7d': { ms: 7 * 86_400_000, resolutionS: 1800 },
};

const round = (v: number | null, digits: number): number | null =>
  v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits;

export function metricsHistoryRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;

  app.get(
    '/api/v1/gateways/:name/nodes/:node/metrics',
    {
      schema: {
        tags: ['nodes'],
        operationId: 'getNodeMetrics',
        summary: "A node's metrics history (CPU, memory, network, jobs running and limit)",
        params: Type.Object({ name: NameSchema, node: NameSchema }),
        querystring: Type.Object({ window: Type.Optional(HistoryWindow) }),
        response: responses({ 200: ['The points, oldest first', NodeMetricsHistory] }),
      },
      config: READER,
    },
    async (req) => {
      const window = req.query.window ?? '1h';
      const w = WINDOWS[window];
      const node = await getNodeByName(db, req.params.name, req.params.node);
      const history = await listNodeHistory(db, node.id, ctx.now() - w.ms);
      return {
        node: node.name,
        window,
        resolutionSeconds: w.resolutionS,
        points: averageNodePoints(history, w.resolutionS * 1000).map((p) => ({
          at: new Date(p.at).toISOString(),
          status: p.status,
          cpuPercent: round(p.cpuPercent, 1),
          memoryAvailableBytes: round(p.memoryAvailableBytes, 0),
          memoryTotalBytes: round(p.memoryTotalBytes, 0),
          networkInBytesPerSec: round(p.networkInBytesPerSec, 0),
          networkOutBytesPerSec: round(p.networkOutBytesPerSec, 0),
          running: round(p.running, 2),
          limit: round(p.limit, 2) ?? 0,
        })),
      };
    },
  );

  app.get(
    '/api/v1/gateways/:name/advice',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'getGatewayAdvice',
        summary: 'Whether to scale out (add a node) or up (raise limits), and the figures behind it',
        params: Type.Object({ name: NameSchema }),
        querystring: Type.Object({ window: Type.Optional(HistoryWindow) }),
        response: responses({ 200: ['The advice', GatewayAdvice] }),
      },
      config: READER,
    },
    async (req) => {
      const window = req.query.window ?? '1h';
      const since = ctx.now() - WINDOWS[window].ms;
      const gw = await getGatewayByName(db, req.params.name);
      const nodes = await listGatewayNodeHistory(db, gw.id, since);
      const lost = await countLostAttempts(db, gw.id, since);
      const advice = adviseScale({
        gateway: gw.name,
        window,
        nodes: [...nodes.values()],
        queue: await listQueueHistory(db, gw.id, since),
        attemptsTimedOut: lost.timedOut,
        attemptsLostWithNode: lost.withNode,
      });
      return { gateway: gw.name, window, advice };
    },
  );
}
