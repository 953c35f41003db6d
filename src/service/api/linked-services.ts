/** /api/v1/linked-services: store connections. Secret properties go in, never out. */
import { Type } from 'typebox';
import { OPERATOR, READER, type App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema, STORES, STORE_TYPES, isStoreType, pathProblem } from '../../protocol/stores.ts';
import { validator } from '../../protocol/validate.ts';
import { FerryError } from '../../common/errors.ts';
import { gatewayNames, getGatewayByName } from '../store/queries/gateways.ts';
import {
  deleteLinkedService,
  getLinkedService,
  listLinkedServices,
  upsertLinkedService,
} from '../store/queries/linked-services.ts';
import { secretNames, splitSecrets } from '../linked-service-secrets.ts';
import { linkedServiceView } from './views.ts';
import {
  LinkedService,
  LinkedServiceCreate,
  LinkedServiceList,
  LinkedServiceTestRequest,
  LinkedServiceTestResult,
  responses,
} from './schemas.ts';
import { DEFAULT_TEST_TIMEOUT_MS, runConnectionTest } from '../connection-tests.ts';

const propertyValidators = Object.fromEntries(STORE_TYPES.map((t) => [t, validator(STORES[t].properties)]));

export function linkedServiceRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;

  app.post(
    '/api/v1/linked-services',
    {
      schema: {
        tags: ['linked services'],
        operationId: 'putLinkedService',
        summary: 'Create or replace a linked service',
        body: LinkedServiceCreate,
        response: responses({ 201: ['The linked service (secret values left out)', LinkedService] }),
      },
    },
    async (req, reply) => {
      const { name, type, gateway, properties } = req.body;
      if (!isStoreType(type))
        throw new FerryError('bad_request', `type: must be one of ${STORE_TYPES.join(', ')} (got "${type}")`);
      propertyValidators[type]?.parse(properties, 'properties');
      const problem = pathProblem('properties', properties);
      if (problem) throw new FerryError('bad_request', `properties: ${problem}`);
      const gw = await getGatewayByName(db, gateway);
      const { plain, sealed } = splitSecrets(ctx.masterKey, type, properties);
      const row = await upsertLinkedService(
        db,
        { name, type, gatewayId: gw.id, properties: plain, secretSealed: sealed },
        ctx.now(),
      );
      void reply.status(201);
      return linkedServiceView(row, gw.name, secretNames(type));
    },
  );

  const listSchema = {
    tags: ['linked services'],
    operationId: 'listLinkedServices',
    summary: 'List the linked services',
    response: responses({ 200: ['The linked services', LinkedServiceList] }),
  };
  app.get('/api/v1/linked-services', { schema: listSchema, config: READER }, async () => {
    const names = await gatewayNames(db);
    return {
      linkedServices: (await listLinkedServices(db)).map((r) =>
        linkedServiceView(r, names.get(r.gateway_id) ?? '', secretNames(r.type)),
      ),
    };
  });

  app.get(
    '/api/v1/linked-services/:name',
    {
      schema: {
        tags: ['linked services'],
        operationId: 'getLinkedService',
        summary: 'Show a linked service',
        params: Type.Object({ name: NameSchema }),
        response: responses({ 200: ['The linked service', LinkedService] }),
      },
      config: READER,
    },
    async (req) => {
      const r = await getLinkedService(db, req.params.name);
      return linkedServiceView(r, (await gatewayNames(db)).get(r.gateway_id) ?? '', secretNames(r.type));
    },
  );

  app.delete(
    '/api/v1/linked-services/:name',
    {
      schema: {
        tags: ['linked services'],
        operationId: 'deleteLinkedService',
        summary: 'Delete a linked service',
        params: Type.Object({ name: NameSchema }),
        response: responses({ 204: 'Deleted' }),
      },
    },
    async (req, reply) => {
      await deleteLinkedService(db, req.params.name);
      void reply.status(204);
    },
  );

  app.post(
    '/api/v1/linked-services/:name/test',
    {
      schema: {
        tags: ['linked services'],
        operationId: 'testLinkedService',
        summary: 'Test a linked service from a node: can it read, and write',
        description:
          "A node of the gateway connects to the store with the linked service's settings. The answer " +
          'comes once the node has reported (within its next heartbeat or two); a failed step is a ' +
          "200 with ok false and the store's error, a node that does not answer in time a 503.",
        params: Type.Object({ name: NameSchema }),
        body: LinkedServiceTestRequest,
        response: responses({ 200: ["The node's findings", LinkedServiceTestResult] }),
      },
      config: OPERATOR,
    },
    async (req, reply) => {
      // The caller going away ends the wait (the test itself is swept).
      const gone = new AbortController();
      reply.raw.on('close', () => gone.abort());
      const outcome = await runConnectionTest(
        ctx,
        {
          linkedService: req.params.name,
          ...(req.body.node === undefined ? {} : { node: req.body.node }),
          ...(req.body.write === undefined ? {} : { write: req.body.write }),
          timeoutMs: (req.body.timeoutSeconds ?? DEFAULT_TEST_TIMEOUT_MS / 1000) * 1000,
        },
        gone.signal,
      );
      const ok = outcome.read.ok && (outcome.write?.ok ?? true);
      return {
        linkedService: outcome.linkedService,
        type: outcome.type,
        gateway: outcome.gateway,
        node: outcome.node,
        ok,
        read: outcome.read,
        write: outcome.write ?? null,
        writeReason: outcome.writeReason,
      };
    },
  );
}
