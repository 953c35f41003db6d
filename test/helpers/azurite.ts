/**
 * Azurite, the Azure Storage emulator, as a real child process on a port of its own and a temp
 * workspace, for tests of the azure-blob connector. Stopped (and its workspace removed) by `stop()`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import type { Gateway } from './scenario.ts';

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const NODE = join(ROOT, 'node_modules/.bin/node');
const AZURITE_BLOB = join(ROOT, 'node_modules/azurite/dist/src/blob/main.js');

/** The emulator's well-known development account; not a secret. */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  port: number;
  /** The emulator's process, so a benchmark can measure its CPU. */
  pid: number;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  accountUrl: string;
  connectionString(key?: string): string;
  stop(): Promise<void>;
}

export function connectionStringFor(accountUrl: string, key = DEV_KEY): string {
  return `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${key};BlobEndpoint=${accountUrl};`;
}

export async function startAzurite(): Promise<Azurite> {
  const location = mkdtempSync(join(tmpdir(), 'ferry-azurite-'));
  const child = spawn(
    NODE,
    [
      AZURITE_BLOB,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
      '--location',
      location,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = once(child, 'exit');
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m?.[1]) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then(
      () => reject(new Error(`azurite exited before listening:\n${output}`)),
      () => {},
    );
    setTimeout(() => reject(new Error(`azurite did not start within 20 s:\n${output}`)), 20_000).unref();
  });
  const accountUrl = `http://127.0.0.1:${port}/${DEV_ACCOUNT}`;
  return {
    port,
    pid: child.pid ?? -1,
    accountUrl,
    connectionString: (key = DEV_KEY) => connectionStringFor(accountUrl, key),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(location, { recursive: true, force: true });
    },
  };
}

/**
 * An Azurite (stopped after the test) holding an empty container `name`, registered with gateway
 * `g` as an azure-blob linked service of the same name (by connection string).
 */
export async function azuriteLinkedService(
  t: TestContext,
  g: Gateway,
  name: string,
): Promise<{ azurite: Azurite; container: ContainerClient }> {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString()).getContainerClient(
    name,
  );
  await container.create();
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name,
    type: 'azure-blob',
    gateway: g.gateway,
    properties: { connectionString: azurite.connectionString(), container: name },
  });
  return { azurite, container };
}
