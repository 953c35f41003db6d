/**
 * Azurite for the benchmarks that write to Azure Blob: started once per benchmark (the test helper's
 * process, on a free port), a fresh container per measured run, and what landed in a container read
 * back for verification: every blob's name, size and the md5 of its content as downloaded (not the
 * Content-MD5 an uploader may have claimed).
 *
 * rclone reaches it through a container SAS URL: rclone 1.60's `endpoint` is only a domain suffix
 * (`https://<account>.<endpoint>`) and `use_emulator` is fixed to 127.0.0.1:10000, while a SAS URL
 * names any host and port and goes through the same azureblob backend code for uploads.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';
import type { BenchContext } from './lib.ts';
import { DEV_ACCOUNT, DEV_KEY, startAzurite, type Azurite } from '../test/helpers/azurite.ts';

export interface BlobDigest {
  size: number;
  md5: string;
}

export class AzuriteStore {
  readonly azurite: Azurite;
  readonly #service: BlobServiceClient;
  readonly #credential = new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY);

  constructor(azurite: Azurite) {
    this.azurite = azurite;
    this.#service = new BlobServiceClient(azurite.accountUrl, this.#credential);
  }

  container(name: string): ContainerClient {
    return this.#service.getContainerClient(name);
  }

  async createContainer(name: string): Promise<void> {
    await this.container(name).create();
  }

  async deleteContainer(name: string): Promise<void> {
    await this.container(name).deleteIfExists();
  }

  /** A SAS URL for one container, for rclone's `--azureblob-sas-url`. */
  sasUrl(container: string): string {
    const sas = generateBlobSASQueryParameters(
      {
        containerName: container,
        permissions: ContainerSASPermissions.parse('racwdl'),
        expiresOn: new Date(Date.now() + 24 * 3600_000),
      },
      this.#credential,
    ).toString();
    return `${this.azurite.accountUrl}/${container}?${sas}`;
  }

  /** Linked service properties for Ferry's azure-blob connector. */
  linkedProperties(container: string): object {
    return { connectionString: this.azurite.connectionString(), container };
  }

  /** Every blob in the container: name -> size and md5 of the downloaded content. */
  async digest(container: string, concurrency = 8): Promise<Map<string, BlobDigest>> {
    const client = this.container(container);
    const names: { name: string; size: number }[] = [];
    for await (const b of client.listBlobsFlat())
      names.push({ name: b.name, size: b.properties.contentLength ?? -1 });
    const out = new Map<string, BlobDigest>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const item = names[next++]!;
        const res = await client.getBlobClient(item.name).download();
        const hash = createHash('md5');
        let size = 0;
        for await (const chunk of res.readableStreamBody as NodeJS.ReadableStream) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        if (size !== item.size) throw new Error(`blob ${item.name}: listed ${item.size} bytes, read ${size}`);
        out.set(item.name, { size, md5: hash.digest('hex') });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return out;
  }

  /** A blob's content as a stream. */
  async open(container: string, name: string): Promise<Readable> {
    const res = await this.container(container).getBlobClient(name).download();
    return res.readableStreamBody as Readable;
  }

  /** The names of the blobs under `prefix`, sorted. */
  async listNames(container: string, prefix = ''): Promise<string[]> {
    const names: string[] = [];
    for await (const b of this.container(container).listBlobsFlat({ prefix })) names.push(b.name);
    return names.sort();
  }
}

export async function startAzuriteStore(ctx: BenchContext): Promise<AzuriteStore> {
  const azurite = await startAzurite();
  ctx.after(() => azurite.stop());
  return new AzuriteStore(azurite);
}

/** Compares what is in a container with what should be; throws naming the first difference. */
export function assertSameBlobs(
  who: string,
  got: ReadonlyMap<string, BlobDigest>,
  want: ReadonlyMap<string, BlobDigest>,
): void {
  for (const [name, w] of want) {
    const g = got.get(name);
    if (!g) throw new Error(`${who}: wrong output: blob ${name} is missing`);
    if (g.size !== w.size || g.md5 !== w.md5)
      throw new Error(
        `${who}: wrong output: blob ${name} has ${g.size} bytes md5 ${g.md5}; want ${w.size} ${w.md5}`,
      );
  }
  for (const name of got.keys())
    if (!want.has(name)) throw new Error(`${who}: wrong output: unexpected blob ${name}`);
}
