/** Statuses from the seed's tables (DESIGN.md section 4). Every status travels with a reason and a hint. */
export type NodeStatus = 'Online' | 'Offline' | 'Upgrading' | 'Limited' | 'Inactive';
export type GatewayStatus = 'Needs Registration' | 'Online' | 'Offline' | 'Limited';
export type NodeRole = 'dispatcher' | 'worker';

/** Machine-readable reasons; the hint says it for a person. */
export type StatusReason =
  | 'ok'
  | 'no_heartbeat'
  | 'upgrading'
  | 'dispatcher_unreachable'
  | 'unreachable_from_dispatcher'
  | 'version_mismatch'
  | 'credentials_out_of_sync'
  | 'config_mismatch'
  | 'isolated'
  | 'no_nodes'
  | 'no_node_online'
  | 'some_nodes_unhealthy';

export interface StatusView<S extends string> {
  status: S;
  reason: StatusReason;
  hint: string;
}
