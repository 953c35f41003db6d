/** An in-process s3rver (an S3 emulator) on a free port, with its own temp folder, closed after the test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Ctx = { after(fn: () => Promise<void> | void): void };

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

/** s3rver's fixed credentials; any other pair fails signature checks. */
export const S3RVER_KEY = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3rverHandle {
  endpoint: string;
  port: number;
  /** Linked service properties for `bucket` on this server. */
  properties(bucket: string): Record<string, unknown>;
}

export async function startS3rver(t: Ctx, buckets: string[]): Promise<S3rverHandle> {
  // s3rver ships no types: required and typed here rather than given a global declaration.
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const directory = mkdtempSync(join(tmpdir(), 'ferry-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  t.after(async () => {
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    properties: (bucket) => ({ endpoint, region: 'us-east-1', bucket, forcePathStyle: true, ...S3RVER_KEY }),
  };
}
