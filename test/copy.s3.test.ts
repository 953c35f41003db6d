/**
 * S3 end to end on a 2-node gateway, against an in-process s3rver: a folder of files copied from the
 * filesystem into a bucket (multipart uploads completed at commit), then back from the bucket into
 * another folder. Bytes identical both ways; tasks ran on both nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startS3rver } from './helpers/s3rver.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  reportedDigests,
  treeDigest,
  waitRun,
  type Gateway,
} from './helpers/scenario.ts';

async function copied(g: Gateway, name: string, source: unknown, sink: unknown): Promise<any> {
  const runId = await runPipeline(g, { name, activities: [{ name: 'files', source, sink }] });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.ok(new Set(copies.map((tk: any) => tk.node)).size >= 2, `${name}: tasks ran on both nodes`);
  return run;
}

test('filesystem to S3 and back: bytes identical, tasks on both nodes', async (t) => {
  const s3 = await startS3rver(t, ['lake']);
  const g = await gatewayWithNodes(t, 2);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  // An empty file, a file of several 8 MiB parts, and many small ones.
  makeFiles(join(g.root, 'in'), 'data', 40, (i) =>
    i === 3 ? 0 : i === 5 ? 17 * 1024 * 1024 + 7 : i * 7_001,
  );
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'lake',
    type: 's3',
    gateway: g.gateway,
    properties: s3.properties('lake'),
  });
  const ls = await g.svc.api.call('GET', '/api/v1/linked-services/lake');
  assert.deepEqual(ls.secrets, ['secretAccessKey']);

  const up = await copied(
    g,
    'to-s3',
    { linkedService: 'src', path: 'data', filesPerTask: 2 },
    { linkedService: 'lake', prefix: 'landing' },
  );

  // What landed in the bucket is exactly the source tree.
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  t.after(() => client.destroy());
  const listed = await client.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'landing/' }));
  const inBucket = new Map<string, string>();
  for (const o of listed.Contents ?? []) {
    const res = await client.send(new GetObjectCommand({ Bucket: 'lake', Key: o.Key }));
    const bytes = await res.Body!.transformToByteArray();
    inBucket.set(o.Key!.slice('landing/'.length), createHash('sha256').update(bytes).digest('hex'));
  }
  const source = treeDigest(join(g.root, 'in', 'data'));
  assert.deepEqual(inBucket, source);

  const down = await copied(
    g,
    'from-s3',
    { linkedService: 'lake', prefix: 'landing', filesPerTask: 2 },
    { linkedService: 'dst', path: 'back' },
  );
  assert.deepEqual(treeDigest(join(g.root, 'out', 'back')), source);
  // Each way, the run records every file's sha256 as the source's (a held file's is taken at commit).
  assert.deepEqual(reportedDigests(up), source);
  assert.deepEqual(reportedDigests(down), source);
});
