/**
 * The API's request and response bodies as named JSON schemas: each has an `$id`, which becomes its
 * name under `components/schemas` in the OpenAPI document (/api/v1/openapi.json), so that a client
 * generated from the document gets one type per body. Responses are described here, not filtered:
 * the service serializes them with JSON.stringify (app.ts), and test/api.openapi.test.ts checks that
 * real responses carry exactly the fields documented here.
 */
import { Type, type TSchema } from 'typebox';
import { NameSchema } from '../../protocol/stores.ts';
import { PipelineSpec } from '../../protocol/pipeline.ts';
import { TaskOutput } from '../../protocol/task.ts';
import {
  ClaimRequest,
  ClaimResponse,
  CompleteRequest,
  ConnectionTestReport,
  ConnectionTestStep,
  HeartbeatRequest,
  HeartbeatResponse,
  KeyGatewayRequest as KeyGatewayRequestSchema,
  KeyGatewayResponse as KeyGatewayResponseSchema,
  ProgressRequest,
  RegisterRequest,
  RegisterResponse,
  ReleaseRequest,
  ReportsRequest,
  ReportsResponse,
} from '../../protocol/agent.ts';
import type { ErrorCode } from '../../common/errors.ts';

/** `schema` under the name `id` (a copy: the protocol's own schemas stay unnamed). */
export function named<T extends TSchema>(id: string, schema: T, description?: string): T {
  return { ...schema, $id: id, ...(description === undefined ? {} : { description }) };
}

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });
const NullableDateTime = Nullable(DateTime);

const ERROR_CODES: Record<ErrorCode, true> = {
  bad_request: true,
  unauthorized: true,
  forbidden: true,
  not_found: true,
  conflict: true,
  registration_refused: true,
  stale_epoch: true,
  lease_lost: true,
  capacity: true,
  rate_limited: true,
  draining: true,
  unavailable: true,
  store_unreachable: true,
  store_auth: true,
  store_object_missing: true,
  store_error: true,
  verification_failed: true,
  cancelled: true,
  internal: true,
};

/** Every error response's body (src/common/errors.ts toProblem). */
export const Problem = named(
  'Problem',
  Type.Object({
    code: Type.Enum(Object.keys(ERROR_CODES), {
      type: 'string',
      description: 'Stable machine-readable error code.',
    }),
    message: Type.String({ description: 'What went wrong, for a person.' }),
    retryable: Type.Boolean({ description: 'Whether the same request may succeed later.' }),
    hint: Type.Optional(Type.String({ description: 'What to do about it.' })),
  }),
  'An error: every 4xx and 5xx response has this body.',
);

// ---- gateways and nodes ----------------------------------------------------------------------------

const StatusReason = Type.String({
  description: 'Machine-readable reason of the status (e.g. ok, no_heartbeat, version_mismatch).',
});

const GatewaySummaryProperties = {
  name: NameSchema,
  status: Type.Enum(['Needs Registration', 'Online', 'Offline', 'Limited'], { type: 'string' }),
  statusReason: StatusReason,
  statusHint: Type.String(),
  version: Nullable(Type.String({ description: 'The version of the nodes that are up.' })),
  nodes: Type.Integer({ minimum: 0, description: 'How many nodes are registered.' }),
  maxNodes: Nullable(Type.Integer({ minimum: 1 })),
  dispatcher: Nullable(Type.String({ description: 'The name of the dispatcher node.' })),
  epoch: Type.Integer({ minimum: 0, description: 'The dispatcher epoch.' }),
  dispatcherSince: NullableDateTime,
  dispatcherReason: Nullable(Type.String()),
  encryption: Type.Union([Type.Literal('none'), Type.Literal('tls')], {
    description:
      'Node-to-node encryption: none (plain HTTP, requests still signed by each node) or tls (mutual TLS between all nodes).',
  }),
  queue: Type.Optional(
    Type.Object(
      {
        tasks: Type.Integer({ minimum: 0, description: 'Tasks queued and due, waiting for a worker.' }),
        oldestWaitSeconds: Nullable(
          Type.Number({ minimum: 0, description: 'How long the oldest has waited.' }),
        ),
      },
      { description: "The gateway's queue now (on a gateway's own page: GET /gateways/NAME and .../nodes)." },
    ),
  ),
  createdAt: DateTime,
};

export const Gateway = named('Gateway', Type.Object(GatewaySummaryProperties), 'A logical gateway.');

const KeysProperties = {
  gateway: NameSchema,
  key1: Type.String({ description: 'Authentication key a node registers with.' }),
  key2: Type.String({ description: 'The second key, for rotation.' }),
};

export const GatewayKeys = named('GatewayKeys', Type.Object(KeysProperties), "A gateway's two keys.");

export const GatewayCreated = named(
  'GatewayCreated',
  Type.Object({ ...GatewaySummaryProperties, ...KeysProperties }),
  'The new gateway and its keys.',
);

export const GatewayCreate = named(
  'GatewayCreate',
  Type.Object(
    {
      name: NameSchema,
      maxNodes: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100_000 }))),
    },
    { additionalProperties: false },
  ),
);

export const GatewayUpdate = named(
  'GatewayUpdate',
  Type.Object(
    {
      maxNodes: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100_000 }))),
      encryption: Type.Optional(
        Type.Union([Type.Literal('none'), Type.Literal('tls')], {
          description:
            'Node-to-node encryption mode; changed live: every node moves over at its next heartbeats, none is deleted.',
        }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const Node = named(
  'Node',
  Type.Object({
    name: NameSchema,
    status: Type.Enum(['Online', 'Offline', 'Upgrading', 'Limited', 'Inactive'], { type: 'string' }),
    statusReason: StatusReason,
    statusHint: Type.String(),
    version: Type.String(),
    role: Type.Union([Type.Literal('dispatcher'), Type.Literal('worker')]),
    cpuPercent: Nullable(Type.Number()),
    memoryAvailableBytes: Nullable(Type.Integer()),
    memoryTotalBytes: Nullable(Type.Integer()),
    networkInBytesPerSec: Nullable(Type.Number()),
    networkOutBytesPerSec: Nullable(Type.Number()),
    jobsRunning: Type.Integer({ minimum: 0 }),
    jobsLimit: Type.Integer({ minimum: 1 }),
    limitIsDefault: Type.Boolean({ description: "False when an operator set the node's limit." }),
    drain: Nullable(Type.Union([Type.Literal('draining'), Type.Literal('drained')])),
    peerAddress: Type.String({ description: 'host:port other nodes reach this node at.' }),
    tls: Type.Boolean({ description: 'The node serves node-to-node traffic in TLS only.' }),
    transport: Type.Union([Type.Literal('plain'), Type.Literal('switching'), Type.Literal('tls')], {
      description:
        'plain: sends and takes plain HTTP; switching: sends TLS and takes both (midway through a change of mode); tls: TLS only.',
    }),
    certificate: Nullable(
      Type.Object({
        source: Type.Union([Type.Literal('gateway'), Type.Literal('user')], {
          description: "gateway: issued by the gateway's CA; user: the node's --tls-cert.",
        }),
        expiresAt: DateTime,
      }),
    ),
    credentials: Type.Object(
      {
        status: Type.Union([Type.Literal('in sync'), Type.Literal('out of sync'), Type.Literal('none')]),
        gatewayKey: Type.Boolean({ description: "Holds the gateway's credential key." }),
        versions: Type.Record(Type.String(), Type.Integer(), {
          description: "The version of each linked service's gateway-held credentials the node holds.",
        }),
      },
      { description: "The node's copy of the gateway-held credentials (never their values)." },
    ),
    queue: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Attempts handed to the node that it has not started yet (on GET /gateways/NAME and .../nodes).',
      }),
    ),
    registeredAt: DateTime,
    lastSeenAt: DateTime,
  }),
  'A node of a gateway, with its last reported figures.',
);

export const GatewayDetail = named(
  'GatewayDetail',
  Type.Object({ ...GatewaySummaryProperties, nodeList: Type.Array(Node) }),
  'A gateway and its nodes.',
);

export const GatewayList = named('GatewayList', Type.Object({ gateways: Type.Array(Gateway) }));

export const GatewayNodes = named('GatewayNodes', Type.Object({ gateway: Gateway, nodes: Type.Array(Node) }));

export const NodeLimit = named(
  'NodeLimit',
  Type.Object(
    {
      limit: Nullable(
        Type.Integer({ minimum: 1, maximum: 10000, description: "null: back to the node's own default" }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const GatewayEvents = named(
  'GatewayEvents',
  Type.Object({
    events: Type.Array(Type.Object({ at: DateTime, kind: Type.String(), message: Type.String() })),
  }),
  "A gateway's events, newest first.",
);

// ---- metrics history and advice ---------------------------------------------------------------------

export const HistoryWindow = Type.Union([Type.Literal('1h'), Type.Literal('24h'), Type.Literal('7d')], {
  description: 'How far back: 1h (10 s points), 24h (5-minute points) or 7d (30-minute points).',
});

const NullableNumber = Nullable(Type.Number());

export const NodeMetricsHistory = named(
  'NodeMetricsHistory',
  Type.Object({
    node: Type.String(),
    window: HistoryWindow,
    resolutionSeconds: Type.Integer({ description: 'How far apart the points are.' }),
    points: Type.Array(
      Type.Object({
        at: DateTime,
        status: Type.String({ description: 'The worst status the node had in the point.' }),
        cpuPercent: NullableNumber,
        memoryAvailableBytes: NullableNumber,
        memoryTotalBytes: NullableNumber,
        networkInBytesPerSec: NullableNumber,
        networkOutBytesPerSec: NullableNumber,
        running: NullableNumber,
        limit: Type.Number(),
      }),
      {
        description:
          'Oldest first; averages over each point. Figures are null while the node was not reporting.',
      },
    ),
  }),
  "A node's figures over a window of its metrics history.",
);

export const GatewayAdvice = named(
  'GatewayAdvice',
  Type.Object({
    gateway: Type.String(),
    window: HistoryWindow,
    advice: Type.Array(
      Type.Object({
        kind: Type.Union([Type.Literal('scale_out'), Type.Literal('scale_up'), Type.Literal('nothing')]),
        title: Type.String(),
        detail: Type.String(),
        figures: Type.Array(Type.Object({ name: Type.String(), value: Type.Number(), unit: Type.String() })),
      }),
      { description: 'Never empty: "nothing" says so with its figures.' },
    ),
  }),
  "The scale advisor's advice for a gateway over a window of its history.",
);

// ---- linked services -------------------------------------------------------------------------------

const Properties = Type.Record(Type.String(), Type.Unknown(), {
  description: "The store's connection settings (see the store contracts); secrets are never returned.",
});

const CredentialPlace = Type.Union([Type.Literal('service'), Type.Literal('gateway')], {
  description:
    "Where the secret values live: 'service' (sealed in the service with its master key; the default) or " +
    "'gateway' (only the gateway's nodes hold them; set them with `ferry credential set`; the service never sees them).",
});

export const LinkedServiceCreate = named(
  'LinkedServiceCreate',
  Type.Object(
    {
      name: NameSchema,
      type: Type.String({ description: 'The store type, e.g. filesystem, postgres, mysql, azure-blob, s3.' }),
      gateway: NameSchema,
      properties: Properties,
      credentials: Type.Optional(CredentialPlace),
    },
    { additionalProperties: false },
  ),
);

export const LinkedService = named(
  'LinkedService',
  Type.Object({
    name: NameSchema,
    type: Type.String(),
    gateway: Type.String(),
    properties: Properties,
    secrets: Type.Array(Type.String(), {
      description: 'Which secret properties are set; their values never leave the service.',
    }),
    credentials: CredentialPlace,
    credentialVersion: Type.Integer({
      description: "The last version of the gateway-held credentials granted (0: none; 'service': always 0).",
    }),
    updatedAt: DateTime,
  }),
  'A connection to a data store.',
);

export const LinkedServiceList = named(
  'LinkedServiceList',
  Type.Object({ linkedServices: Type.Array(LinkedService) }),
);

// ---- pipelines and runs ----------------------------------------------------------------------------

export const PipelineSpecSchema = named('PipelineSpec', PipelineSpec, 'A pipeline as applied.');

const PipelineProperties = {
  name: NameSchema,
  version: Type.Integer({ minimum: 1 }),
  updatedAt: DateTime,
  spec: PipelineSpecSchema,
};

export const Pipeline = named('Pipeline', Type.Object(PipelineProperties), 'A stored pipeline.');

export const PipelineApplied = named(
  'PipelineApplied',
  Type.Object({
    ...PipelineProperties,
    changed: Type.Boolean({ description: 'False when the same pipeline was already stored.' }),
  }),
);

export const PipelineList = named('PipelineList', Type.Object({ pipelines: Type.Array(Pipeline) }));

const RunProperties = {
  id: Type.String(),
  pipeline: Type.String(),
  pipelineVersion: Type.Integer(),
  status: Type.String({ description: 'running, succeeded or failed.' }),
  error: Nullable(Type.String()),
  createdAt: DateTime,
  startedAt: NullableDateTime,
  finishedAt: NullableDateTime,
};

export const Run = named('Run', Type.Object(RunProperties), 'A run of a pipeline.');

export const RunList = named('RunList', Type.Object({ runs: Type.Array(Run) }), 'Runs, newest first.');

export const RunProgress = named(
  'RunProgress',
  Type.Object({
    tasksTotal: Type.Integer({ minimum: 0, description: 'Copy tasks (plan tasks are not counted).' }),
    tasksDone: Type.Integer({ minimum: 0 }),
    tasksFailed: Type.Integer({ minimum: 0 }),
    tasksRunning: Type.Integer({ minimum: 0, description: 'Copy tasks an attempt is running now.' }),
    planned: Type.Boolean({ description: 'Every plan has finished: tasksTotal is final.' }),
    rows: Type.Integer({ minimum: 0 }),
    bytes: Type.Integer({ minimum: 0 }),
  }),
);

export const ActivityRun = named(
  'ActivityRun',
  Type.Object({
    name: Type.String(),
    status: Type.String(),
    error: Nullable(Type.String()),
    startedAt: NullableDateTime,
    finishedAt: NullableDateTime,
  }),
);

const RunSummaryProperties = {
  ...RunProperties,
  activities: Type.Array(ActivityRun),
  progress: RunProgress,
};

export const RunSummary = named(
  'RunSummary',
  Type.Object(RunSummaryProperties),
  'A run with its activities and progress (tasks=false).',
);

export const Attempt = named(
  'Attempt',
  Type.Object({
    id: Type.String(),
    node: Type.String(),
    epoch: Type.Integer(),
    status: Type.String(),
    rows: Type.Integer(),
    bytes: Type.Integer(),
    error: Nullable(Type.String()),
    claimedAt: DateTime,
    startedAt: NullableDateTime,
    finishedAt: NullableDateTime,
  }),
  'One attempt at a task, on one node.',
);

export const Task = named(
  'Task',
  Type.Object({
    id: Type.String(),
    activity: Type.String(),
    kind: Type.String({ description: 'plan, copy or finalize.' }),
    index: Type.Integer(),
    status: Type.String(),
    node: Nullable(Type.String()),
    attempts: Type.Integer(),
    rows: Type.Integer(),
    bytes: Type.Integer(),
    durationMs: Nullable(Type.Integer()),
    error: Nullable(Type.String()),
    outputs: Type.Array(named('TaskOutput', TaskOutput), {
      description: 'What a copy task wrote (objects in the sink).',
    }),
    partitions: Nullable(Type.Integer({ description: 'How many copy tasks a plan made.' })),
    attemptList: Type.Array(Attempt),
  }),
);

export const RunDetail = named(
  'RunDetail',
  Type.Object({ ...RunSummaryProperties, tasks: Type.Array(Task) }),
  'A run with its activities, progress, tasks and their attempts.',
);

export const LinkedServiceTestRequest = named(
  'LinkedServiceTestRequest',
  Type.Object(
    {
      node: Type.Optional(
        Type.String({
          ...NameSchema,
          description: 'The node that connects (default: the dispatcher, else any Online node).',
        }),
      ),
      write: Type.Optional(
        Type.Boolean({
          description:
            'Also write and remove a probe object or table (default: when a pipeline writes to the linked service).',
        }),
      ),
      timeoutSeconds: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 300,
          description: 'How long to wait for the node (default 30).',
        }),
      ),
    },
    { additionalProperties: false },
  ),
);

const TestStep = named('ConnectionTestStep', ConnectionTestStep);

export const LinkedServiceTestResult = named(
  'LinkedServiceTestResult',
  Type.Object({
    linkedService: Type.String(),
    type: Type.String(),
    gateway: Type.String(),
    node: Type.String({ description: 'The node that connected.' }),
    ok: Type.Boolean({ description: 'Every step tried succeeded.' }),
    read: TestStep,
    write: Nullable(TestStep),
    writeReason: Type.String({ description: 'Why writing was or was not tried.' }),
  }),
  "A node's connection test of a linked service: whether it can read, and write.",
);

// ---- agent (what nodes call) -----------------------------------------------------------------------

export const AgentRegisterRequest = named('RegisterRequest', RegisterRequest);
export const AgentRegisterResponse = named('RegisterResponse', RegisterResponse);
export const KeyGatewayRequest = named('KeyGatewayRequest', KeyGatewayRequestSchema);
export const KeyGatewayResponse = named('KeyGatewayResponse', KeyGatewayResponseSchema);
export const AgentHeartbeatRequest = named('HeartbeatRequest', HeartbeatRequest);
export const AgentHeartbeatResponse = named('HeartbeatResponse', HeartbeatResponse);
export const AgentClaimRequest = named('ClaimRequest', ClaimRequest);
export const AgentClaimResponse = named('ClaimResponse', ClaimResponse);
export const AgentProgressRequest = named('ProgressRequest', ProgressRequest);
export const AgentCompleteRequest = named('CompleteRequest', CompleteRequest);
export const AgentReleaseRequest = named('ReleaseRequest', ReleaseRequest);
export const AgentReportsRequest = named('ReportsRequest', ReportsRequest);
export const AgentReportsResponse = named('ReportsResponse', ReportsResponse);
export const AgentConnectionTestReport = named('ConnectionTestReport', ConnectionTestReport);
export const CredentialGrantResponse = named(
  'CredentialGrant',
  Type.Object({
    linkedService: NameSchema,
    gateway: NameSchema,
    gatewayId: Type.String(),
    version: Type.Integer({ minimum: 1 }),
    gatewayKey: Type.String({
      description: "The gateway's X25519 public key (base64 SPKI DER): seal the values to it.",
    }),
    grant: Type.String({
      description: 'Signed by the service: a node takes the values set with it, once, before it expires.',
    }),
    expiresAt: DateTime,
  }),
  'A version of the gateway-held credentials of a linked service, granted to be set.',
);

export const CredentialGrantRequest = named(
  'CredentialGrantRequest',
  Type.Object(
    {
      node: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 128,
          description:
            'The node the values will be sent to: only it takes the grant. Leave out to relay through this service.',
        }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const CredentialRelayRequest = named(
  'CredentialRelayRequest',
  Type.Object(
    {
      version: Type.Integer({ minimum: 1 }),
      box: Type.String({
        minLength: 1,
        maxLength: 256 * 1024,
        description: 'The values, sealed to the gateway key.',
      }),
    },
    { additionalProperties: false },
  ),
);

export const CredentialRelayed = named(
  'CredentialRelayed',
  Type.Object({ linkedService: NameSchema, version: Type.Integer() }),
);

export const ResyncRequested = named(
  'ResyncRequested',
  Type.Object({ gateway: NameSchema, resync: Type.Integer() }),
);

export const Ok = named('Ok', Type.Object({ ok: Type.Literal(true) }));

// ---- route helpers ---------------------------------------------------------------------------------

/** A response in the document: its description and its named schema. */
function response(description: string, schema: TSchema): TSchema {
  // Wrapped so that the schema is a nested one, which the document names (a route's top-level
  // schema would be inlined); app.ts unwraps the single-element allOf into a plain $ref.
  if (typeof (schema as { $id?: unknown }).$id !== 'string') return { ...schema, description };
  return { description, allOf: [schema] };
}

/**
 * A route's responses: the success (status -> [description, schema], or a description alone for a
 * body-less one such as 204) and the problem every 4xx and 5xx carries.
 */
export function responses(ok: Record<number, readonly [string, TSchema] | string>): Record<string, TSchema> {
  const out: Record<string, TSchema> = {};
  for (const [status, r] of Object.entries(ok))
    out[status] = typeof r === 'string' ? Type.Null({ description: r }) : response(r[0], r[1]);
  out['4xx'] = response('The request was refused (see the problem code).', Problem);
  out['5xx'] = response('The service or a store failed (see the problem code).', Problem);
  return out;
}
