/**
 * The S3 store for the conformance suite: one s3rver for the whole file with one bucket, a key
 * prefix per place with the source under `<place>/src/` and the sink under `<place>/dst/`, read back
 * through a client of its own.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3RVER_KEY, startS3rver, type S3rverHandle } from '../../../test/helpers/s3rver.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { s3Sink, s3Source } from '../s3/s3-connector.ts';
import { closedPort } from './closed-port.ts';
import type { ConformanceHarness, ConformancePlace, Dataset, StoredFile } from './conformance-harness.ts';

const BUCKET = 'lake';
const WRONG_SECRET = 'ferry-conformance-wrong-secret';

export function s3Harness(): ConformanceHarness {
  let s3: S3rverHandle | undefined;
  let client: S3Client | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  let places = 0;

  const running = (): { s3: S3rverHandle; client: S3Client } => {
    if (!s3 || !client) throw new Error('s3rver is not started');
    return { s3, client };
  };
  const endpoint = (
    prefix: string,
    linkedService: string,
    properties: Record<string, unknown> = running().s3.properties(BUCKET),
  ): ResolvedEndpointT => ({ type: 's3', linkedService, properties, options: { prefix } });
  /** The same broken properties as a source and as a sink. */
  const both = (properties: Record<string, unknown>) => ({
    source: endpoint('src', 'lake', properties),
    sink: endpoint('dst', 'out', properties),
  });

  return {
    type: 's3',
    kind: 'files',
    source: s3Source,
    sink: s3Sink,
    splitOptions: { filesPerTask: 1 },
    limits: {
      conditionalReads: 's3rver ignores If-Match: a ranged read after a replacement returns the new bytes',
      leftovers:
        's3rver implements neither ListMultipartUploads nor AbortMultipartUpload, so unfinished uploads can be ' +
        'neither listed nor removed there (on S3 abort() aborts them, and a lifecycle rule reclaims those of killed attempts)',
    },
    broken: [
      {
        failure: 'bad_configuration',
        what: 'no region',
        endpoints: async () => {
          const { region: _region, ...properties } = running().s3.properties(BUCKET);
          return { ...both(properties), mentions: ['region'], secrets: [] };
        },
      },
      {
        failure: 'unreachable',
        what: 'nothing listening at the endpoint',
        endpoints: async () => ({
          ...both({ ...running().s3.properties(BUCKET), endpoint: `http://127.0.0.1:${await closedPort()}` }),
          mentions: [`bucket "${BUCKET}"`],
          secrets: [],
        }),
      },
      {
        failure: 'wrong_credentials',
        what: 'an unknown access key id',
        endpoints: async () => ({
          ...both({
            ...running().s3.properties(BUCKET),
            accessKeyId: 'NOBODY',
            secretAccessKey: WRONG_SECRET,
          }),
          mentions: [`bucket "${BUCKET}"`],
          secrets: [WRONG_SECRET],
        }),
      },
      {
        failure: 'wrong_credentials',
        what: 'a wrong secret for a known access key id',
        skip: 's3rver checks the access key id but not the request signature, so it accepts any secret',
      },
      {
        failure: 'missing_object',
        what: 'a bucket that does not exist',
        endpoints: async () => ({
          ...both(running().s3.properties('no-such-bucket')),
          mentions: ['bucket "no-such-bucket"'],
          secrets: [],
        }),
      },
    ],

    async start() {
      s3 = await startS3rver({ after: (fn) => cleanups.push(fn) }, [BUCKET]);
      const p = s3.properties(BUCKET);
      client = new S3Client({
        endpoint: s3.endpoint,
        region: String(p['region']),
        forcePathStyle: true,
        // A copy: the SDK marks the credentials object it is given, and the endpoints spread this one.
        credentials: { ...S3RVER_KEY },
      });
    },

    async stop() {
      client?.destroy();
      for (const cleanup of cleanups) await cleanup();
    },

    allowedRoots: () => [],

    addressedTo: (port) => both({ ...running().s3.properties(BUCKET), endpoint: `http://127.0.0.1:${port}` }),

    async place(): Promise<ConformancePlace> {
      const { client: c } = running();
      const place = `place-${++places}`;
      const src = `${place}/src/`;
      const dst = `${place}/dst/`;
      let seeded: string[] = [];
      return {
        source: endpoint(`${place}/src`, 'lake'),
        sink: endpoint(`${place}/dst`, 'out'),
        sourceName: `${place}/src`,
        secrets: [S3RVER_KEY.secretAccessKey],
        async seed(data: Dataset) {
          if (data.kind !== 'files') throw new Error('s3 stores files');
          for (const file of data.files) {
            await c.send(
              new PutObjectCommand({
                Bucket: BUCKET,
                Key: src + file.name,
                Body: file.data,
                ContentLength: file.data.length,
              }),
            );
          }
          seeded = data.files.map((f) => f.name);
        },
        async unseed() {
          for (const name of seeded)
            await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: src + name }));
        },
        async visible() {
          const listed = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: dst }));
          const files: StoredFile[] = [];
          for (const object of listed.Contents ?? []) {
            const key = object.Key ?? '';
            const got = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
            const body = got.Body ? Buffer.from(await got.Body.transformToByteArray()) : Buffer.alloc(0);
            files.push({ name: key.slice(dst.length), data: body });
          }
          return { kind: 'files', files };
        },
        async probeLeftovers() {
          // The bucket is shared by every place, but only connection tests write at its root.
          const listed = await c.send(
            new ListObjectsV2Command({ Bucket: BUCKET, Prefix: '.ferry-staging/' }),
          );
          return (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
        },
        leftovers: async () => {
          throw new Error('unused: see limits.leftovers');
        },
      };
    },
  };
}
