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
import type { StoreDialect } from './store-dialect.ts';
import * as m001 from './migrations/001-initial.ts';
import * as m002 from './migrations/002-watermarks.ts';
import * as m003 from './migrations/003-node-keys.ts';
import * as m004 from './migrations/004-connection-tests.ts';
import * as m005 from './migrations/005-api-tokens-and-audit.ts';
import * as m006 from './migrations/006-gateway-credentials.ts';
import * as m007 from './migrations/007-gateway-encryption.ts';
import * as m008 from './migrations/008-metrics-history.ts';
import * as m009 from './migrations/009-credential-floor.ts';
import { FerryError } from '../../common/errors.ts';
import { storeUnavailable } from './store-errors.ts';

export interface Store {
  db: Kysely<Schema>;
  dialect: StoreDialect;
  /** Where it lives, with any password removed (for logs). */
  describe: string;
  /**
   * Runs `fn` holding the session lock `key`, for duties one replica runs at a time; false (without
   * running it) when another holds the lock. On PostgreSQL the lock is an advisory lock on a pinned
   * connection: if that connection is lost, PostgreSQL has let the lock go (another replica may take
   * it), and `lost` aborts so `fn` stops at its next step. On SQLite (one process) it just runs `fn`.
   */
  tryLocked(key: number, fn: (lost: AbortSignal) => Promise<void>): Promise<boolean>;
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
  '004-connection-tests': m004,
  '005-api-tokens-and-audit': m005,
  '006-gateway-credentials': m006,
  '007-gateway-encryption': m007,
  '008-metrics-history': m008,
  '009-credential-floor': m009,
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
      // A server that does not answer (a failover in progress) fails a request in seconds, as a
      // refused one does, instead of holding it until the caller times out.
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      // bigint columns hold milliseconds and counters well inside 2^53.
      types: { getTypeParser: bigintAsNumber },
      ...(location.pgSchema ? { options: `-c search_path=${location.pgSchema}` } : {}),
    });
    // A connection PostgreSQL cuts (a restart, a failover, pg_terminate_backend) emits 'error' on its
    // client, idle in the pool or checked out (a transaction, the scheduler's lock): unhandled, that
    // event would end the process. The failure reaches the query that was using the connection (as
    // `unavailable`, store-errors.ts), the pool drops the client, and the next query connects afresh.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    if (location.pgSchema)
      await pool.query(`CREATE SCHEMA IF NOT EXISTS "${location.pgSchema.replaceAll('"', '')}"`);
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    store = {
      db,
      dialect: 'postgres',
      describe: redactUrl(location.url),
      tryLocked: (key, fn) => tryAdvisoryLocked(pool, key, fn),
      close: () => db.destroy(),
    };
  } else {
    mkdirSync(location.dataDir, { recursive: true });
    const file = join(location.dataDir, 'ferry.db');
    const db = new Kysely<Schema>({ dialect: createSqliteDialect(file) });
    store = {
      db,
      dialect: 'sqlite',
      describe: file,
      tryLocked: async (_key, fn) => {
        await fn(new AbortController().signal);
        return true;
      },
      close: () => db.destroy(),
    };
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

async function tryAdvisoryLocked(
  pool: pg.Pool,
  key: number,
  fn: (lost: AbortSignal) => Promise<void>,
): Promise<boolean> {
  const client = await pool.connect();
  const lost = new AbortController();
  const onError = (err: Error): void =>
    lost.abort(storeUnavailable(err) ?? new FerryError('unavailable', err.message, { cause: err }));
  client.on('error', onError);
  let broken = false;
  try {
    const got = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [key]);
    if (!got.rows[0]?.ok) return false;
    try {
      await fn(lost.signal);
    } finally {
      if (!lost.signal.aborted) await client.query('select pg_advisory_unlock($1)', [key]);
    }
    lost.signal.throwIfAborted();
    return true;
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    client.removeListener('error', onError);
    // A client that failed goes, rather than back to the pool still holding a lock it may not have let go.
    client.release(broken);
  }
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
