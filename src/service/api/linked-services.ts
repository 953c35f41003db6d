/** /api/v1/linked-services: store connections. Secret properties go in, never out. */
import { Type } from 'typebox';
import type { App } from '../app.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema, STORES, STORE_TYPES, isStoreType, pathProblem } from '../../protocol/stores.ts';
import { validator } from '../../protocol/validate.ts';
import { FerryError } from '../../common/errors.ts';
import { getGatewayByName } from '../store/queries/gateways.ts';
import {
  deleteLinkedService,
  getLinkedService,
  listLinkedServices,
  upsertLinkedService,
} from '../store/queries/linked-services.ts';
import { secretNames, splitSecrets } from '../linked-service-secrets.ts';
import { linkedServiceView } from './views.ts';

const propertyValidators = Object.fromEntries(STORE_TYPES.map((t) => [t, validator(STORES[t].properties)]));

export function linkedServiceRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;
  const gatewayNames = async () =>
    new Map((await db.selectFrom('gateways').select(['id', 'name']).execute()).map((g) => [g.id, g.name]));

  app.post(
    '/api/v1/linked-services',
    {
      schema: {
        tags: ['linked services'],
        body: Type.Object(
          {
            name: NameSchema,
            type: Type.String(),
            gateway: NameSchema,
            properties: Type.Record(Type.String(), Type.Unknown()),
          },
          { additionalProperties: false },
        ),
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

  app.get('/api/v1/linked-services', { schema: { tags: ['linked services'] } }, async () => {
    const names = await gatewayNames();
    return {
      linkedServices: (await listLinkedServices(db)).map((r) =>
        linkedServiceView(r, names.get(r.gateway_id) ?? '', secretNames(r.type)),
      ),
    };
  });

  app.get(
    '/api/v1/linked-services/:name',
    { schema: { tags: ['linked services'], params: Type.Object({ name: NameSchema }) } },
    async (req) => {
      const r = await getLinkedService(db, req.params.name);
      return linkedServiceView(r, (await gatewayNames()).get(r.gateway_id) ?? '', secretNames(r.type));
    },
  );

  app.delete(
    '/api/v1/linked-services/:name',
    { schema: { tags: ['linked services'], params: Type.Object({ name: NameSchema }) } },
    async (req, reply) => {
      await deleteLinkedService(db, req.params.name);
      void reply.status(204);
    },
  );
}
