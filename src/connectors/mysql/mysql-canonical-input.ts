/**
 * A table object's stream, read as the records a loader writes: canonical CSV parsed by csv-parse
 * (an unquoted empty field is NULL, `""` an empty string), the header row checked against the
 * columns and dropped. The bytes are counted and hashed as they arrive, so the figures a sink
 * reports are those of the canonical bytes it was fed.
 */
import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { parse, type CastingContext } from 'csv-parse';
import { FerryError } from '../../common/errors.ts';
import type { TableColumn } from '../../tables/table-columns.ts';

export type CanonicalRecord = (string | null)[];

export interface CanonicalInput {
  /** The data records, in order; iterate once. */
  records: AsyncIterable<CanonicalRecord>;
  /** Figures of what was read so far (all of it once `records` is done). */
  bytes(): number;
  rows(): number;
  sha256(): string;
  /** Whether every record was read. */
  done(): boolean;
  /** Stops reading and releases the stream (and its source). */
  destroy(err?: Error): void;
}

export function canonicalInput(stream: Readable, columns: readonly TableColumn[]): CanonicalInput {
  const hash = createHash('sha256');
  let bytes = 0;
  let rows = 0;
  let digest: string | undefined;
  let done = false;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const parser = parse({
    cast: (value: string, context: CastingContext) => (value === '' && !context.quoting ? null : value),
  });
  // Errors reach the parser (the source's own error, untouched), and so whoever iterates it.
  pipeline(stream, tap, parser, () => {});

  async function* records(): AsyncGenerator<CanonicalRecord> {
    let header = true;
    for await (const record of parser as AsyncIterable<CanonicalRecord>) {
      if (header) {
        checkHeader(record, columns);
        header = false;
        continue;
      }
      if (record.length !== columns.length) {
        throw new FerryError(
          'bad_request',
          `row ${rows + 1} has ${record.length} fields where ${columns.length} columns were announced`,
        );
      }
      rows++;
      yield record;
    }
    done = true;
  }

  return {
    records: records(),
    bytes: () => bytes,
    rows: () => rows,
    sha256: () => (digest ??= hash.digest('hex')),
    done: () => done,
    destroy: (err?: Error) => {
      stream.destroy(err);
      parser.destroy(err);
    },
  };
}

function checkHeader(header: CanonicalRecord, columns: readonly TableColumn[]): void {
  const names = columns.map((c) => c.name);
  if (header.length !== names.length || header.some((name, i) => name !== names[i])) {
    throw new FerryError(
      'bad_request',
      `the header row (${header.join(', ')}) does not name the columns (${names.join(', ')})`,
    );
  }
}
