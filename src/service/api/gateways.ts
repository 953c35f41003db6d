/** /api/v1/gateways: logical gateways, their keys, nodes and events. */
import { Type } from 'typebox';
import { OPERATOR, READER, type App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import {
  createGateway,
  deleteGateway,
  getGatewayByName,
  listGateways,
  regenerateKey,
  updateGateway,
} from '../store/queries/gateways.ts';
import { deleteNode, getNodeByName, setNodeDrain, setNodeLimit } from '../store/queries/nodes.ts';
import { loadGatewayState } from '../store/queries/load-gateway-state.ts';
import { setGatewayEncryption } from '../store/queries/gateway-tls.ts';
import { gatewayDetail, gatewaySummary, keysView, nodeView, type GatewayStateView } from './views.ts';
import { activeAttemptsByNode, waitingAttemptsByNode } from '../store/queries/active-attempts.ts';
import { gatewayQueue } from '../store/queries/metrics-history.ts';
import { listGatewayEvents } from '../store/queries/list-events.ts';
import { requestResync } from '../store/queries/gateway-credentials.ts';
import { ResyncRequested } from './schemas.ts';
import { FerryError } from '../../common/errors.ts';
import { NameSchema } from '../../protocol/stores.ts';
import {
  Gateway,
  GatewayCreate,
  GatewayCreated,
  GatewayDetail,
  GatewayEvents,
  GatewayKeys,
  GatewayList,
  GatewayNodes,
  GatewayUpdate,
  Node,
  NodeLimit,
  responses,
} from './schemas.ts';

const GwParams = Type.Object({ name: NameSchema });
const NodeParams = Type.Object({ name: NameSchema, node: NameSchema });

export function gatewayRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;
  const state = async (name: string) => {
    const gw = await getGatewayByName(db, name);
    const s = await loadGatewayState(db, gw.id, ctx.now(), ctx.timings);
    if (!s) throw new FerryError('not_found', `gateway "${name}" does not exist`);
    const ids = s.nodes.map((n) => n.row.id);
    const assigned = await activeAttemptsByNode(db, ids);
    const waiting = await waitingAttemptsByNode(db, ids);
    const q = await gatewayQueue(db, gw.id, ctx.now());
    const queue = {
      tasks: q.tasks,
      oldestWaitSeconds: q.oldestQueuedAt === null ? null : Math.max(0, ctx.now() - q.oldestQueuedAt) / 1000,
    };
    return { ...s, assigned, waiting, queue };
  };

  app.post(
    '/api/v1/gateways',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'createGateway',
        summary: 'Create a gateway',
        body: GatewayCreate,
        response: responses({ 201: ['The new gateway and its keys', GatewayCreated] }),
      },
    },
    async (req, reply) => {
      const gw = await createGateway(db, req.body.name, req.body.maxNodes ?? null, ctx.now());
      void reply.status(201);
      return {
        ...gatewaySummary((await loadGatewayState(db, gw.id, ctx.now(), ctx.timings))!),
        ...keysView(gw),
      };
    },
  );

  app.get(
    '/api/v1/gateways',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'listGateways',
        summary: 'List the gateways',
        response: responses({ 200: ['The gateways', GatewayList] }),
      },
      config: READER,
    },
    async () => {
      const out = [];
      for (const gw of await listGateways(db)) {
        const s = await loadGatewayState(db, gw.id, ctx.now(), ctx.timings);
        if (s) out.push(gatewaySummary(s));
      }
      return { gateways: out };
    },
  );

  app.get(
    '/api/v1/gateways/:name',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'getGateway',
        summary: 'Show a gateway and its nodes',
        params: GwParams,
        response: responses({ 200: ['The gateway', GatewayDetail] }),
      },
      config: READER,
    },
    async (req) => gatewayDetail(await state(req.params.name)),
  );

  app.patch(
    '/api/v1/gateways/:name',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'updateGateway',
        summary: 'Change a gateway',
        params: GwParams,
        body: GatewayUpdate,
        response: responses({ 200: ['The gateway', Gateway] }),
      },
    },
    async (req) => {
      await updateGateway(
        db,
        req.params.name,
        req.body.maxNodes === undefined ? {} : { maxNodes: req.body.maxNodes },
      );
      if (req.body.encryption !== undefined)
        await setGatewayEncryption(db, req.params.name, req.body.encryption, ctx.now());
      return gatewaySummary(await state(req.params.name));
    },
  );

  app.delete(
    '/api/v1/gateways/:name',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'deleteGateway',
        summary: 'Delete a gateway',
        params: GwParams,
        response: responses({ 204: 'Deleted' }),
      },
    },
    async (req, reply) => {
      await deleteGateway(db, req.params.name);
      void reply.status(204);
    },
  );

  app.get(
    '/api/v1/gateways/:name/keys',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'getGatewayKeys',
        summary: "Show a gateway's keys",
        params: GwParams,
        response: responses({ 200: ['The keys', GatewayKeys] }),
      },
      // Admin only, though a read: a key lets anyone join a node, and a node is handed secrets.
    },
    async (req) => keysView(await getGatewayByName(db, req.params.name)),
  );

  app.post(
    '/api/v1/gateways/:name/keys/:which/regenerate',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'regenerateGatewayKey',
        summary: 'Regenerate one of the keys',
        params: Type.Object({
          name: NameSchema,
          which: Type.Union([Type.Literal('key1'), Type.Literal('key2')]),
        }),
        response: responses({ 200: ['The keys', GatewayKeys] }),
      },
    },
    async (req) => keysView(await regenerateKey(db, req.params.name, req.params.which)),
  );

  app.post(
    '/api/v1/gateways/:name/resync-credentials',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'resyncCredentials',
        summary: "Have the dispatcher push the gateway's whole credential set to every node again",
        description:
          'Moves no secret through the service: the dispatcher sends what it holds, sealed to each node. ' +
          "Watch the nodes' credential status (GET .../nodes) turn 'in sync'.",
        params: GwParams,
        response: responses({ 202: ['Asked of the dispatcher', ResyncRequested] }),
      },
      config: OPERATOR,
    },
    async (req, reply) => {
      const gw = await getGatewayByName(db, req.params.name);
      await requestResync(db, gw.id);
      void reply.status(202);
      return { gateway: gw.name, resync: gw.credential_resync + 1 };
    },
  );

  app.get(
    '/api/v1/gateways/:name/nodes',
    {
      schema: {
        tags: ['nodes'],
        operationId: 'listNodes',
        summary: "List a gateway's nodes",
        params: GwParams,
        response: responses({ 200: ['The gateway and its nodes', GatewayNodes] }),
      },
      config: READER,
    },
    async (req) => {
      const s = await state(req.params.name);
      return { gateway: gatewaySummary(s), nodes: s.nodes.map((n) => nodeView(n, s)) };
    },
  );

  app.put(
    '/api/v1/gateways/:name/nodes/:node/limit',
    {
      schema: {
        tags: ['nodes'],
        operationId: 'setNodeLimit',
        summary: "Set a node's concurrent jobs limit",
        params: NodeParams,
        body: NodeLimit,
        response: responses({ 200: ['The node', Node] }),
      },
      config: OPERATOR,
    },
    async (req) => {
      await setNodeLimit(db, req.params.name, req.params.node, req.body.limit, ctx.now());
      ctx.notifier.notify((await getGatewayByName(db, req.params.name)).id);
      return nodeOf(await state(req.params.name), req.params.node);
    },
  );

  for (const action of ['drain', 'resume'] as const) {
    app.post(
      `/api/v1/gateways/:name/nodes/:node/${action}`,
      {
        schema: {
          tags: ['nodes'],
          operationId: action === 'drain' ? 'drainNode' : 'resumeNode',
          summary: action === 'drain' ? 'Drain a node (it takes no new tasks)' : 'Resume a drained node',
          params: NodeParams,
          response: responses({ 200: ['The node', Node] }),
        },
        config: OPERATOR,
      },
      async (req) => {
        await setNodeDrain(db, req.params.name, req.params.node, action === 'drain', ctx.now());
        ctx.notifier.notify((await getGatewayByName(db, req.params.name)).id);
        return nodeOf(await state(req.params.name), req.params.node);
      },
    );
  }

  app.delete(
    '/api/v1/gateways/:name/nodes/:node',
    {
      schema: {
        tags: ['nodes'],
        operationId: 'deleteNode',
        summary: 'Delete a node from its gateway',
        params: NodeParams,
        response: responses({ 204: 'Deleted' }),
      },
    },
    async (req, reply) => {
      const node = await getNodeByName(db, req.params.name, req.params.node);
      await deleteNode(db, node, ctx.now());
      ctx.notifier.notify(node.gateway_id);
      void reply.status(204);
    },
  );

  app.get(
    '/api/v1/gateways/:name/events',
    {
      schema: {
        tags: ['gateways'],
        operationId: 'listGatewayEvents',
        summary: "A gateway's events, newest first",
        params: GwParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }),
        response: responses({ 200: ['The events', GatewayEvents] }),
      },
      config: READER,
    },
    async (req) => {
      const gw = await getGatewayByName(db, req.params.name);
      const rows = await listGatewayEvents(db, gw.id, req.query.limit ?? 50);
      return {
        events: rows.map((e) => ({ at: new Date(e.at).toISOString(), kind: e.kind, message: e.message })),
      };
    },
  );
}

function nodeOf(s: GatewayStateView, name: string) {
  const n = s.nodes.find((x) => x.row.name === name);
  if (!n) throw new FerryError('not_found', `node "${name}" does not exist`);
  return nodeView(n, s);
}
