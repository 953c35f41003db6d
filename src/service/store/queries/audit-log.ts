/**
 * The audit log (migration 005): one row per changing request, written by the service's audit hook
 * (src/service/audit-log.ts), read newest first, and pruned past its retention.
 */
import type { Kysely } from 'kysely';
import type { AuditLogTable, Schema } from '../schema.ts';

export type AuditRow = Omit<AuditLogTable, 'id'> & { id: number };

export async function insertAuditEntry(db: Kysely<Schema>, entry: Omit<AuditLogTable, 'id'>): Promise<void> {
  await db.insertInto('audit_log').values(entry).execute();
}

export interface AuditFilter {
  /** Only entries at or after this time (ms). */
  since?: number | undefined;
  /** Only this actor's entries (a token name, or "bootstrap"). */
  actor?: string | undefined;
  limit: number;
}

/** Entries newest first. */
export async function listAuditEntries(db: Kysely<Schema>, filter: AuditFilter): Promise<AuditRow[]> {
  let q = db.selectFrom('audit_log').selectAll();
  if (filter.since !== undefined) q = q.where('at', '>=', filter.since);
  if (filter.actor !== undefined) q = q.where('actor', '=', filter.actor);
  return q.orderBy('at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
}

/** Deletes the entries older than `before` (ms); returns how many went. */
export async function pruneAuditLog(db: Kysely<Schema>, before: number): Promise<number> {
  const r = await db.deleteFrom('audit_log').where('at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}
