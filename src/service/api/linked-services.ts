/** /api/v1/linked-services: store connections. Secret properties go in, never out. */
import { Type } from 'typebox';
import { OPERATOR, READER, type App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema, STORES, STORE_TYPES, isStoreType, pathProblem } from '../../protocol/stores.ts';
import { validator } from '../../protocol/validate.ts';
import { FerryError } from '../../common/errors.ts';
import { findGateway, gatewayNames, getGatewayByName } from '../store/queries/gateways.ts';
import { nextCredentialVersion, storeRelay } from '../store/queries/gateway-credentials.ts';
import { getNodeByName } from '../store/queries/nodes.ts';
import { signGrant } from '../../protocol/credentials.ts';
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
  CredentialGrantRequest,
  CredentialGrantResponse,
  CredentialRelayRequest,
  CredentialRelayed,
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
      const { name, type, gateway, properties, credentials = 'service' } = req.body;
      if (!isStoreType(type))
        throw new FerryError('bad_request', `type: must be one of ${STORE_TYPES.join(', ')} (got "${type}")`);
      propertyValidators[type]?.parse(properties, 'properties');
      const problem = pathProblem('properties', properties);
      if (problem) throw new FerryError('bad_request', `properties: ${problem}`);
      const gw = await getGatewayByName(db, gateway);
      const { plain, sealed } = splitSecrets(ctx.masterKey, type, properties);
      if (credentials === 'gateway') {
        // The service must never see a gateway-held secret: refuse it rather than drop it silently.
        const given = secretNames(type).filter((k) => k in properties);
        if (given.length > 0)
          throw new FerryError(
            'bad_request',
            `properties: ${given.join(', ')} must not be sent to the service: linked service "${name}" keeps its credentials in the gateway`,
            {
              hint: `leave them out, and set them with \`ferry credential set ${name}\` once the linked service exists`,
            },
          );
      }
      const row = await upsertLinkedService(
        db,
        { name, type, gatewayId: gw.id, properties: plain, secretSealed: sealed, credentials },
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

  /** A linked service kept in the gateway, and its gateway with the credential key it needs. */
  const gatewayHeld = async (name: string) => {
    const ls = await getLinkedService(db, name);
    if (ls.credentials !== 'gateway')
      throw new FerryError('conflict', `linked service "${name}" keeps its credentials in the service`, {
        hint: `set its secret properties with \`ferry linked-service create\`, or recreate it with --credentials gateway`,
      });
    const gw = await findGateway(db, ls.gateway_id);
    if (!gw) throw new FerryError('not_found', `the gateway of linked service "${name}" no longer exists`);
    return { ls, gw };
  };

  app.post(
    '/api/v1/linked-services/:name/credential-grant',
    {
      schema: {
        tags: ['linked services'],
        operationId: 'grantCredential',
        summary: "Grant a new version of a linked service's gateway-held credentials",
        description:
          "The caller seals the values to the gateway's key and sends them with the version either to a " +
          'node (with the grant) or to this service (relayed to the dispatcher unopened).',
        params: Type.Object({ name: NameSchema }),
        body: CredentialGrantRequest,
        response: responses({ 201: ['The version and the grant', CredentialGrantResponse] }),
      },
    },
    async (req, reply) => {
      const { ls, gw } = await gatewayHeld(req.params.name);
      if (gw.credential_key === null)
        throw new FerryError('conflict', `gateway "${gw.name}" has no credential key yet`, {
          hint: `start a node of the gateway (\`ferry node --key KEY\`): its first node makes the key`,
        });
      const nodeName = req.body?.node;
      const node = nodeName === undefined ? null : await getNodeByName(db, gw.name, nodeName);
      const version = await nextCredentialVersion(db, ls.id);
      const { grant, claims } = signGrant(
        ctx.leaseKey.privateKey,
        { gatewayId: gw.id, linkedService: ls.name, version, nodeId: node?.id ?? null },
        ctx.now(),
      );
      void reply.status(201);
      return {
        linkedService: ls.name,
        gateway: gw.name,
        gatewayId: gw.id,
        version,
        gatewayKey: gw.credential_key,
        grant,
        expiresAt: new Date(claims.expiresAt).toISOString(),
      };
    },
  );

  app.post(
    '/api/v1/linked-services/:name/credentials',
    {
      schema: {
        tags: ['linked services'],
        operationId: 'relayCredential',
        summary: "Relay a linked service's credentials, sealed to the gateway key, to the dispatcher",
        description:
          'The service stores the box, which it cannot open, until the dispatcher holds that version; the ' +
          'dispatcher then pushes it to every worker.',
        params: Type.Object({ name: NameSchema }),
        body: CredentialRelayRequest,
        response: responses({ 202: ['Relayed', CredentialRelayed] }),
      },
    },
    async (req, reply) => {
      const { ls, gw } = await gatewayHeld(req.params.name);
      const { version, box } = req.body;
      if (version > ls.credential_version)
        throw new FerryError('bad_request', `version ${version} of "${ls.name}" was never granted`, {
          hint: 'ask for a grant first (POST .../credential-grant)',
        });
      if (!(await storeRelay(db, gw.id, { linkedService: ls.name, version, box }, ctx.now())))
        throw new FerryError('conflict', `version ${version} of "${ls.name}" was already sent`);
      ctx.notifier.notify(gw.id);
      void reply.status(202);
      return { linkedService: ls.name, version };
    },
  );
}
