/** Table shapes as Kysely sees them. Times are milliseconds since the epoch; booleans are 0/1. */
import type { Generated } from 'kysely';

export interface GatewaysTable {
  id: string;
  name: string;
  key1: string;
  key2: string;
  peer_secret: string;
  /** Optional cap on nodes; null = no cap. */
  max_nodes: number | null;
  created_at: number;
  dispatcher_node_id: string | null;
  epoch: number;
  lease_until: number;
  /** Why the dispatcher last changed, for operators ("node-a silent 5.0 s; lease expired"). */
  dispatcher_reason: string;
  dispatcher_changed_at: number;
  /** The gateway's credential public key (X25519, base64 SPKI DER): the first a node reported. */
  credential_key: string | null;
  /** Raised by `ferry gateway resync-credentials`: the dispatcher pushes its whole set again. */
  credential_resync: number;
  /** Node-to-node encryption: 'none' or 'tls' (protocol/encryption.ts). */
  encryption: string;
  /** The gateway CA's certificate (PEM); null until a node first asks for a certificate. */
  ca_cert: string | null;
  /** Its private key (PKCS#8 PEM), sealed with the service's master key. */
  ca_key_sealed: string | null;
}

export interface NodesTable {
  id: string;
  gateway_id: string;
  name: string;
  /** Registration order: breaks election ties. */
  seq: number;
  version: string;
  peer_host: string;
  peer_port: number;
  tls: number;
  cores: number;
  memory_bytes: number;
  token_hash: string;
  registered_at: number;
  last_seen_at: number;
  metrics_json: string;
  running: number;
  limit_default: number;
  limit_override: number | null;
  draining: number;
  drain_requested: number;
  upgrading: number;
  reach_json: string;
  left_at: number | null;
  /** Ed25519, base64 SPKI DER: verifies the node's node-to-node requests. */
  sign_public_key: string | null;
  /** X25519, base64 SPKI DER: task secrets are sealed to it. */
  seal_public_key: string | null;
  /** What the node last reported holding of the gateway's credentials (protocol/credentials.ts NodeCredentials). */
  credentials_json: string;
  /** What the node last reported about its node-to-node transport (protocol/encryption.ts TlsReport). */
  tls_report_json: string | null;
  /** ECDSA P-256, base64 SPKI DER: the key the gateway CA certifies for this node (auto certificates). */
  tls_public_key: string | null;
  /** The certificate the gateway CA issued the node (PEM), the address it names, when to renew it. */
  tls_cert: string | null;
  tls_cert_host: string | null;
  tls_cert_renew_at: number | null;
}

export interface LinkedServicesTable {
  id: string;
  name: string;
  type: string;
  gateway_id: string;
  properties_json: string;
  /** Secret properties, AES-256-GCM sealed with the service's master key. */
  secret_sealed: string | null;
  /** Where its secret lives: 'service' (secret_sealed) or 'gateway' (the nodes hold it; the service never sees it). */
  credentials: string;
  /** The last version of its gateway-held credentials the service granted (0: none yet). */
  credential_version: number;
  /** The first version that counts for this linked service (migration 009). */
  credential_floor: number;
  created_at: number;
  updated_at: number;
}

export interface PipelinesTable {
  id: string;
  name: string;
  spec_json: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface RunsTable {
  id: string;
  pipeline_name: string;
  pipeline_version: number;
  status: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
}

export interface ActivityRunsTable {
  id: string;
  run_id: string;
  idx: number;
  name: string;
  gateway_id: string;
  /** The activity as applied, with resolved linked service names (no secrets). */
  spec_json: string;
  status: string;
  error: string | null;
  started_at: number | null;
  finished_at: number | null;
}

export interface TasksTable {
  id: string;
  run_id: string;
  activity_run_id: string;
  gateway_id: string;
  kind: string;
  idx: number;
  work_json: string;
  status: string;
  attempts: number;
  max_attempts: number;
  backoff_ms: number;
  max_backoff_ms: number;
  queued_at: number;
  not_before: number;
  node_id: string | null;
  result_json: string | null;
  rows: number;
  bytes: number;
  error: string | null;
  started_at: number | null;
  finished_at: number | null;
}

export interface AttemptsTable {
  id: string;
  task_id: string;
  run_id: string;
  node_id: string;
  /** Kept beside node_id so history survives the node's deletion. */
  node_name: string;
  epoch: number;
  status: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  lease_until: number;
  rows: number;
  bytes: number;
  error: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  at: number;
  gateway_id: string | null;
  kind: string;
  message: string;
}

export interface WatermarksTable {
  pipeline_name: string;
  activity: string;
  column_name: string;
  /** The highest value copied so far, as text; null = the column held no values yet. */
  value: string | null;
  /** The run that advanced it. */
  run_id: string;
  updated_at: number;
}

export interface ConnectionTestsTable {
  /** `ct_...`: also what the endpoint's secrets are sealed for (protocol/sealed-secrets.ts). */
  id: string;
  node_id: string;
  linked_service: string;
  write: number;
  created_at: number;
  /** After this the test is no longer handed out, and the row may be swept. */
  expires_at: number;
  /** Last handed to the node (handed again if no report came within a while). */
  delivered_at: number | null;
  /** The node's ConnectionTestReport, once it answered. */
  report_json: string | null;
}

export interface ApiTokensTable {
  /** `tok_...` */
  id: string;
  /** Unique among every token ever made, revoked ones included. */
  name: string;
  /** reader | operator | admin (src/service/roles.ts). */
  role: string;
  /** sha256 of the token, hex: the token itself is shown once, when made, and kept nowhere. */
  token_hash: string;
  created_at: number;
  /** The name of the token that made it ("bootstrap" for FERRY_ADMIN_TOKEN). */
  created_by: string;
  /** Updated at most once a minute per token, not on every request. */
  last_used_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  /** The token's name, or "bootstrap". */
  actor: string;
  actor_role: string;
  method: string;
  /** The route as the OpenAPI document names it: /api/v1/gateways/{name}. */
  route: string;
  /** The route's path parameters. */
  params_json: string;
  /** The few body fields known to be safe to keep for this route (never a secret). */
  details_json: string;
  /** The HTTP status the request was answered with. */
  status: number;
}

/** Credentials set through the service, sealed to the gateway key, until the dispatcher holds them. */
export interface CredentialRelaysTable {
  gateway_id: string;
  linked_service: string;
  version: number;
  box: string;
  created_at: number;
}

/**
 * A node's figures over time (migration 008): 10 s samples (resolution_s 10) and, past their
 * retention, 5-minute averages of them (resolution_s 300). Figures are null while the node was not
 * reporting (Offline): never its last figures carried on.
 */
export interface NodeMetricsHistoryTable {
  node_id: string;
  resolution_s: number;
  /** The start of the point's bucket (ms). */
  at: number;
  gateway_id: string;
  node_name: string;
  /** How many 10 s samples the point averages (1 for a sample). */
  samples: number;
  /** The node's status; for an average, the worst status in its bucket. */
  status: string;
  cpu_percent: number | null;
  memory_available_bytes: number | null;
  memory_total_bytes: number | null;
  network_in_bps: number | null;
  network_out_bps: number | null;
  jobs_running: number | null;
  jobs_limit: number;
}

/** A gateway's queue over time, sampled and averaged as node_metrics_history. */
export interface GatewayMetricsHistoryTable {
  gateway_id: string;
  resolution_s: number;
  at: number;
  samples: number;
  /** Tasks queued and due (not waiting out a retry backoff). */
  queued: number;
  /** How long the oldest of them had waited (0 with none); for an average, the longest. */
  oldest_wait_ms: number;
}

export interface Schema {
  credential_relays: CredentialRelaysTable;
  gateways: GatewaysTable;
  nodes: NodesTable;
  linked_services: LinkedServicesTable;
  pipelines: PipelinesTable;
  runs: RunsTable;
  activity_runs: ActivityRunsTable;
  tasks: TasksTable;
  attempts: AttemptsTable;
  events: EventsTable;
  watermarks: WatermarksTable;
  connection_tests: ConnectionTestsTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  node_metrics_history: NodeMetricsHistoryTable;
  gateway_metrics_history: GatewayMetricsHistoryTable;
}
