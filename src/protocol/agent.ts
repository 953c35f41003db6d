/**
 * Node -> service messages, under /api/v1/agent. Nodes only ever call out (they sit behind firewalls);
 * the service answers with what the node must know: its role, the dispatcher epoch, its limit and
 * drain state, and (for the dispatcher) the workers it may hand tasks to.
 */
import { Type, type Static, type TProperties } from 'typebox';
import { ResolvedEndpoint, TaskSpec, TaskResult } from './task.ts';
import { PublicKeyText } from './node-keys.ts';
import { VersionSchema } from './version.ts';
import { GatewayCredentials, NodeCredentials } from './credentials.ts';
import { EncryptionOrder, TlsReport } from './encryption.ts';

/** An object that refuses unknown fields (nodes' own messages: nothing is silently ignored). */
const Strict = <T extends TProperties>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

/**
 * The most attempt ids one heartbeat may list as running: far above any node's limit (an operator's
 * is at most 10,000), and below what one SQL statement may bind (SQLite: 32,766 variables).
 */
export const MAX_RUNNING = 20_000;
/** The highest concurrent jobs limit a node may have (as an operator may set: src/service/api/gateways.ts). */
export const MAX_LIMIT = 10_000;
/** The most peers one heartbeat may report on: a gateway's most nodes. */
export const MAX_REACH = 100_000;

export const RegisterRequest = Strict({
  key: Type.String({ minLength: 1, maxLength: 256 }),
  name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }),
  version: VersionSchema,
  /** Address other nodes use to reach this node's peer port. */
  peerHost: Type.String({ minLength: 1, maxLength: 255 }),
  peerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
  /** Node-to-node encryption: TLS on the peer port. */
  tls: Type.Boolean(),
  cores: Type.Integer({ minimum: 1 }),
  memoryBytes: Type.Integer({ minimum: 0 }),
  /** The node's own concurrent jobs limit, from its cores and memory. */
  defaultLimit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT }),
  /** The node's Ed25519 public key: its node-to-node requests are signed with it. */
  signPublicKey: PublicKeyText,
  /** The node's X25519 public key: the secret values of its tasks are sealed to it. */
  sealPublicKey: PublicKeyText,
});

export const RegisterResponse = Type.Object({
  nodeId: Type.String(),
  nodeToken: Type.String(),
  gatewayId: Type.String(),
  gatewayName: Type.String(),
});

export const Metrics = Strict({
  cpuPercent: Type.Number({ minimum: 0 }),
  memoryAvailableBytes: Type.Integer({ minimum: 0 }),
  memoryTotalBytes: Type.Integer({ minimum: 0 }),
  networkInBytesPerSec: Type.Number({ minimum: 0 }),
  networkOutBytesPerSec: Type.Number({ minimum: 0 }),
});

export const PeerReach = Strict({
  nodeId: Type.String(),
  ok: Type.Boolean(),
  /** e.g. "connection refused" */
  error: Type.Optional(Type.String()),
});

/** Which gateway an authentication key belongs to (asked by an already registered node at start). */
export const KeyGatewayRequest = Strict({ key: Type.String({ minLength: 1, maxLength: 256 }) });
export const KeyGatewayResponse = Type.Object({ gatewayId: Type.String(), gatewayName: Type.String() });

export const HeartbeatRequest = Strict({
  version: VersionSchema,
  metrics: Metrics,
  /** Attempts this node is running now (renews their leases). */
  running: Type.Array(Type.String({ maxLength: 256 }), { maxItems: MAX_RUNNING }),
  /** The node's own concurrent jobs limit (the operator's override, if any, wins). */
  defaultLimit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT }),
  draining: Type.Boolean(),
  upgrading: Type.Boolean(),
  /** The node serves node-to-node traffic in TLS only (sends TLS, refuses plain). */
  tls: Type.Boolean(),
  /** Its node-to-node transport in full (protocol/encryption.ts); absent from older nodes. */
  encryption: Type.Optional(TlsReport),
  peerHost: Type.String({ minLength: 1, maxLength: 255 }),
  peerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
  /** Reachability of the peers this node probed since its last heartbeat. */
  reach: Type.Array(PeerReach, { maxItems: MAX_REACH }),
  /** The node is shutting down: release its role and mark it Offline now. */
  leaving: Type.Optional(Type.Boolean()),
  /** The node's public keys (a node registered before it had keys sends them here first). */
  signPublicKey: PublicKeyText,
  sealPublicKey: PublicKeyText,
  /** The gateway credentials this node holds (protocol/credentials.ts); absent from older nodes. */
  credentials: Type.Optional(NodeCredentials),
});

export const PeerView = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  url: Type.String(),
  /** May get tasks now (Online, not draining). */
  eligible: Type.Boolean(),
  limit: Type.Integer(),
  running: Type.Integer(),
  /** The peer's Ed25519 public key (null until it sent one): its requests are verified with it. */
  signPublicKey: Type.Union([Type.String(), Type.Null()]),
  /** The peer's X25519 public key: credentials copied to it are sealed to it. */
  sealPublicKey: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** Heard from lately (not Offline): worth a node-to-node call. */
  live: Type.Optional(Type.Boolean()),
  /** The gateway credentials the peer last reported holding. */
  credentials: Type.Optional(NodeCredentials),
});

/**
 * A linked service's connection test, handed to the node that runs it in a heartbeat reply. The
 * endpoint's secret values are sealed to that node for this test id (protocol/sealed-secrets.ts).
 */
export const ConnectionTest = Type.Object({
  testId: Type.String({ minLength: 1, maxLength: 64 }),
  endpoint: ResolvedEndpoint,
  /** Also write (and remove) a probe object or table. */
  write: Type.Boolean(),
});

/** The most connection tests one heartbeat reply hands a node. */
export const MAX_CONNECTION_TESTS = 20;

/** The error of a step that failed, as the store reported it (through the connector's error mapping). */
export const StepError = Strict({
  code: Type.String({ maxLength: 64 }),
  message: Type.String({ maxLength: 4000 }),
  hint: Type.Optional(Type.String({ maxLength: 4000 })),
});

/** One step of a connection test: reading, or writing. */
export const ConnectionTestStep = Strict({
  ok: Type.Boolean(),
  /** What was verified ("listed /data (3 entries)"), or what was tried when it failed. */
  detail: Type.String({ maxLength: 4000 }),
  error: Type.Optional(StepError),
  ms: Type.Integer({ minimum: 0 }),
});

/** A node's answer to a connection test. */
export const ConnectionTestReport = Strict({
  read: ConnectionTestStep,
  /** Present when writing was asked for and reading worked (no write is tried after a failed read). */
  write: Type.Optional(ConnectionTestStep),
});

export const HeartbeatResponse = Type.Object({
  nodeId: Type.String(),
  gatewayName: Type.String(),
  role: Type.Union([Type.Literal('dispatcher'), Type.Literal('worker')]),
  /** The gateway's current dispatcher epoch; dispatches from an older epoch are refused. */
  epoch: Type.Integer(),
  dispatcherNodeId: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  statusHint: Type.String(),
  /** The limit the operator set (null = the node's own default). */
  limit: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  drain: Type.Boolean(),
  peers: Type.Array(PeerView),
  /** Attempts the service no longer counts as this node's: stop them, discard their output. */
  revoked: Type.Array(Type.String()),
  heartbeatIntervalMs: Type.Integer({ minimum: 50 }),
  /**
   * The service's Ed25519 public key (base64 SPKI DER): dispatcher lease tokens verify under it
   * (protocol/dispatcher-lease.ts).
   */
  servicePublicKey: PublicKeyText,
  /** To the dispatcher only: its lease token for this epoch, forwarded in every dispatch. */
  dispatcherLease: Type.Optional(Type.String()),
  /** Connection tests an operator asked this node to run (`ferry linked-service test`). */
  connectionTests: Type.Optional(Type.Array(ConnectionTest, { maxItems: MAX_CONNECTION_TESTS })),
  /** The gateway's credential key, relays (to the dispatcher) and resync counter. */
  credentials: Type.Optional(GatewayCredentials),
  /** The gateway's encryption mode, and the node's certificate when it has a new one (protocol/encryption.ts). */
  encryption: Type.Optional(EncryptionOrder),
});

export const Slot = Type.Object({ nodeId: Type.String(), free: Type.Integer({ minimum: 0 }) });

export const ClaimRequest = Type.Object({
  epoch: Type.Integer(),
  slots: Type.Array(Slot),
  /** Long-poll: wait up to this long for work. */
  waitMs: Type.Integer({ minimum: 0, maximum: 60000 }),
});

export const AssignedAttempt = Type.Object({
  attemptId: Type.String(),
  taskId: Type.String(),
  nodeId: Type.String(),
  epoch: Type.Integer(),
  /** When the service queued the task (for queue-to-start latency). */
  queuedAt: Type.Integer(),
  /**
   * How long the attempt's lease lasts after each renewal (the service's attemptLeaseMs): how long
   * its worker waits for an unreachable service before giving up. Absent from older services.
   */
  leaseMs: Type.Optional(Type.Integer({ minimum: 1 })),
  spec: TaskSpec,
});

export const ClaimResponse = Type.Object({ attempts: Type.Array(AssignedAttempt) });

export const ProgressRequest = Type.Object({
  rows: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0 }),
});

export const CompleteRequest = Type.Union([
  Type.Object({ outcome: Type.Literal('succeeded'), result: TaskResult }),
  Type.Object({
    outcome: Type.Literal('failed'),
    error: Type.Object({ code: Type.String(), message: Type.String(), retryable: Type.Boolean() }),
  }),
]);

export const ReleaseRequest = Type.Object({ reason: Type.String() });

/** The most reports one batch may carry. */
export const MAX_REPORTS = 500;

/**
 * One report of a batch: an attempt's progress (which renews its lease) or its outcome, as the
 * attempt's own progress and complete calls would send it.
 */
export const Report = Type.Union([
  Type.Object({ attemptId: Type.String({ minLength: 1 }), progress: ProgressRequest }),
  Type.Object({ attemptId: Type.String({ minLength: 1 }), complete: CompleteRequest }),
]);

/** Reports of several attempts, taken one by one, in order, each on its own (one refused, the rest still count). */
export const ReportsRequest = Type.Object({
  reports: Type.Array(Report, { minItems: 1, maxItems: MAX_REPORTS }),
});

/** Per report, in the request's order: taken, or refused with the error the single call would give. */
export const ReportResult = Type.Union([
  Type.Object({ ok: Type.Literal(true) }),
  Type.Object({
    ok: Type.Literal(false),
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      retryable: Type.Boolean(),
      hint: Type.Optional(Type.String()),
    }),
  }),
]);

export const ReportsResponse = Type.Object({ results: Type.Array(ReportResult) });

export type RegisterRequestT = Static<typeof RegisterRequest>;
export type RegisterResponseT = Static<typeof RegisterResponse>;
export type KeyGatewayResponseT = Static<typeof KeyGatewayResponse>;
export type MetricsT = Static<typeof Metrics>;
export type PeerReachT = Static<typeof PeerReach>;
export type HeartbeatRequestT = Static<typeof HeartbeatRequest>;
export type HeartbeatResponseT = Static<typeof HeartbeatResponse>;
export type PeerViewT = Static<typeof PeerView>;
export type SlotT = Static<typeof Slot>;
export type ConnectionTestT = Static<typeof ConnectionTest>;
export type ConnectionTestStepT = Static<typeof ConnectionTestStep>;
export type ConnectionTestReportT = Static<typeof ConnectionTestReport>;
export type ClaimRequestT = Static<typeof ClaimRequest>;
export type AssignedAttemptT = Static<typeof AssignedAttempt>;
export type ClaimResponseT = Static<typeof ClaimResponse>;
export type ProgressRequestT = Static<typeof ProgressRequest>;
export type CompleteRequestT = Static<typeof CompleteRequest>;
export type ReportT = Static<typeof Report>;
export type ReportsRequestT = Static<typeof ReportsRequest>;
export type ReportResultT = Static<typeof ReportResult>;
export type ReportsResponseT = Static<typeof ReportsResponse>;
