/**
 * For the gateway-held credential tests: a MariaDB database with a user whose password only the test
 * knows (so a copy works only with the right credential), a linked service that keeps that password
 * in the gateway, a pipeline reading from it, and `ferry credential set` run as an operator would.
 */
import type { TestContext } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { cli, tempDir, type ServiceHandle } from './cluster.ts';
import { fsLinkedServices, runPipeline, type Gateway } from './scenario.ts';

export const MY = { host: '127.0.0.1', port: 3306 };
export const ROWS = 500;

export interface MariaUser {
  db: string;
  user: string;
  password: string;
}

/** A database with table `items` (ROWS rows) and a user that may read it with `password`. */
export async function mariaWithUser(t: TestContext, password: string): Promise<MariaUser> {
  const tag = `${process.pid}_${Date.now().toString(36)}`;
  const db = `ferry_cred_${tag}`;
  const user = `ferry_u_${tag}`.slice(0, 32);
  const admin = await mysql.createConnection({
    ...MY,
    user: 'root',
    database: 'test',
    multipleStatements: true,
  });
  t.after(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${db}; DROP USER IF EXISTS '${user}'@'%'`);
    await admin.end();
  });
  await admin.query(`
    CREATE DATABASE ${db};
    CREATE TABLE ${db}.items (id bigint PRIMARY KEY, name varchar(40));
    INSERT INTO ${db}.items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_${ROWS};
    CREATE USER '${user}'@'%' IDENTIFIED BY '${password}';
    GRANT SELECT ON ${db}.* TO '${user}'@'%';
  `);
  return { db, user, password };
}

/** Linked services `maria` (credentials in the gateway, no password given) and `out` (files). */
export async function mariaLinkedService(g: Gateway, m: MariaUser): Promise<void> {
  await fsLinkedServices(g, { in: 'unused', out: 'out' }, { in: 'unused', out: 'out' });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'maria',
    type: 'mysql',
    gateway: g.gateway,
    credentials: 'gateway',
    properties: { ...MY, user: m.user, database: m.db },
  });
}

/** Runs a copy of `items` to files under a new folder; returns the run id. */
export async function copyItems(g: Gateway, folder: string): Promise<string> {
  return runPipeline(g, {
    name: `items-${folder}`,
    activities: [
      {
        name: 'items',
        source: { linkedService: 'maria', table: 'items', partitionColumn: 'id', partitions: 3 },
        sink: { linkedService: 'out', path: folder },
      },
    ],
  });
}

/** `ferry credential set maria` with the password in a file; more arguments after. */
export async function setPassword(
  t: TestContext,
  svc: Pick<ServiceHandle, 'url' | 'token'>,
  password: string,
  more: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(tempDir(t, 'ferry-pw-'), 'pw.json');
  writeFileSync(file, JSON.stringify({ password }), { mode: 0o600 });
  return cli(['credential', 'set', 'maria', '--from-file', file, ...more], {
    FERRY_SERVICE: svc.url,
    FERRY_TOKEN: svc.token,
  });
}

/** The gateway's nodes as the API shows them. */
export async function nodesOf(g: Pick<Gateway, 'svc' | 'gateway'>): Promise<any[]> {
  return (await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`)).nodes;
}
