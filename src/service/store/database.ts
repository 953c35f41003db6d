/**
 * Opens the service's store: an embedded SQLite file (default) or PostgreSQL (`postgres://...`,
 * production, several replicas). One Kysely instance and one set of migrations serve both.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { createSqliteDialect } from './sqlite-dialect.ts';
import type { Schema } from './schema.ts';
import * as m001 from './migrations/001-initial.ts';
import * as m002 from './migrations/002-watermarks.ts';
import * as m003 from './migrations/003-node-keys.ts';
import { FerryError } from '../../common/errors.ts';

export type StoreDialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Schema>;
  dialect: StoreDialect;
  /** Where it lives, with any password removed (for logs). */
  describe: string;
  close(): Promise<void>;
}

export interface StoreLocation {
  /** `postgres://...`; absent = SQLite file `ferry.db` in dataDir. */
  url?: string | undefined;
  dataDir: string;
  /** PostgreSQL schema to use (tests isolate themselves with one each). */
  pgSchema?: string | undefined;
}

const MIGRATIONS: Record<string, { up: (db: Kysely<unknown>, d: StoreDialect) => Promise<void> }> = {
  '001-initial': m001,
  '002-watermarks': m002,
  '003-node-keys': m003,
};

function bigintAsNumber(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  return oid === 20 ? Number : (pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown);
}

export async function openStore(location: StoreLocation): Promise<Store> {
  const isPg = location.url !== undefined && /^postgres(ql)?:\/\//.test(location.url);
  if (location.url !== undefined && !isPg) {
    throw new FerryError('bad_request', `--store must be a postgres:// URL (got ${redactUrl(location.url)})`);
  }
  let store: Store;
  if (isPg && location.url !== undefined) {
    const pool = new pg.Pool({
      connectionString: location.url,
      max: 10,
      // bigint columns hold milliseconds and counters well inside 2^53.
      types: { getTypeParser: bigintAsNumber },
      ...(location.pgSchema ? { options: `-c search_path=${location.pgSchema}` } : {}),
    });
    pool.on('error', () => {}); // idle client errors surface on the next query instead of crashing
    if (location.pgSchema)
      await pool.query(`CREATE SCHEMA IF NOT EXISTS "${location.pgSchema.replaceAll('"', '')}"`);
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    store = { db, dialect: 'postgres', describe: redactUrl(location.url), close: () => db.destroy() };
  } else {
    mkdirSync(location.dataDir, { recursive: true });
    const file = join(location.dataDir, 'ferry.db');
    const db = new Kysely<Schema>({ dialect: createSqliteDialect(file) });
    store = { db, dialect: 'sqlite', describe: file, close: () => db.destroy() };
  }
  try {
    await migrate(store);
  } catch (err) {
    await store.close();
    throw new FerryError(
      'unavailable',
      `cannot open the store ${store.describe}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return store;
}

async function migrate(store: Store): Promise<void> {
  const provider: MigrationProvider = {
    getMigrations: async () => {
      const out: Record<string, Migration> = {};
      for (const [name, mod] of Object.entries(MIGRATIONS)) {
        out[name] = { up: (db) => mod.up(db, store.dialect) };
      }
      return out;
    },
  };
  // Kysely looks for its migration tables in every schema unless told which one: name ours, or a
  // store in one schema would take another schema's tables for its own.
  const schema =
    store.dialect === 'postgres'
      ? (await sql<{ s: string }>`select current_schema() as s`.execute(store.db)).rows[0]?.s
      : undefined;
  const { error, results } = await new Migrator({
    db: store.db,
    provider,
    ...(schema ? { migrationTableSchema: schema } : {}),
  }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${(error as Error).message}`);
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
