/**
 * `COPY ... TO STDOUT` as a readable stream of the bytes PostgreSQL sends, for node-postgres'
 * `client.query()`. It takes the connection's socket while the COPY runs and gives it back, with
 * whatever follows the copy, to node-postgres, as pg-copy-streams' `to()` does; it differs in how it
 * reads the CopyData messages (one per row): in place, without an object per row.
 *
 * Each socket read is one chunk out. The 5-byte headers between the rows are squeezed out by moving
 * the rows down within the chunk (copyWithin), so a chunk of 8-64 KiB holding a hundred rows costs
 * a hundred memmoves and no allocation. pg-copy-streams made two Buffer objects and a list entry per
 * row, and copied every chunk once more to join them: a third of the node's CPU in a table copy.
 *
 * On the socket pgSocket() makes (the connector's connections without TLS), the copy takes the reads
 * themselves: they come in pool buffers (src/common/chunk-pool.ts) and each goes downstream as it
 * is, for its last consumer to give back. On any other socket (TLS) it reads the socket's stream.
 *
 * Protocol (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY): after the
 * query come CopyOutResponse, CopyData* (NoticeResponse, ParameterStatus and NotificationResponse may
 * come between them), then CopyDone, or an ErrorResponse at any point. CopyDone ends the stream and
 * is consumed. An ErrorResponse, or any other message, ends the copy and goes to node-postgres whole,
 * which parses it and reports it to this query (handleError, handleCommandComplete); the stream then
 * fails with the error, or ends.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Connection, Submittable } from 'pg';
import { pooledSocket, releaseChunk } from '../../common/chunk-pool.ts';

const ERROR_RESPONSE = 0x45; // E
const COPY_OUT_RESPONSE = 0x48; // H
const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
/** Asynchronous messages a server may send during the copy: skipped. */
const INTERSPERSED = new Set([0x41, 0x4e, 0x53]); // NotificationResponse, NoticeResponse, ParameterStatus

export interface ParsedChunk {
  /** The CopyData bytes of the chunk, the chunk's own memory (moved down within it). */
  data: Buffer | undefined;
  /**
   * Set once the copy is over: `rest` (the bytes after it) belongs to node-postgres again. 'error':
   * `rest` starts with an ErrorResponse, which node-postgres will report.
   */
  end?: 'done' | 'error';
  rest?: Buffer;
}

const DIVERT = Symbol('divert');
/** Sends the socket's reads to a COPY instead of node-postgres, or (undefined) back. */
type Divert = (take: ((chunk: Buffer) => boolean) | undefined) => void;
type DivertableSocket = Socket & { [DIVERT]?: Divert };

/**
 * node-postgres' socket (its `stream` option) reading into pool buffers. Outside a copy each read is
 * copied for node-postgres, which may keep what it is given, and the buffer read into again.
 */
export function pgSocket(): Socket {
  let diverted: ((chunk: Buffer) => boolean) | undefined;
  const socket: DivertableSocket = pooledSocket({}, (chunk) => {
    if (diverted) return diverted(chunk);
    const copy = Buffer.from(chunk);
    releaseChunk(chunk);
    socket.emit('data', copy);
    return true;
  });
  socket[DIVERT] = (take) => {
    diverted = take;
  };
  return socket;
}

/** The CopyData stream's framing, fed chunk by chunk as they come off the socket. */
export class CopyOutParser {
  /** The current message's type; 0 while waiting for the next one. */
  #code = 0;
  /** Bytes of the length field still missing (4 -> 0), then of the body still to come. */
  #lengthBytes = 0;
  #length = 0;
  #remaining = 0;
  #over = false;

  parse(chunk: Buffer): ParsedChunk {
    if (this.#over) throw new Error('COPY parser: the copy is already over');
    const end = chunk.length;
    let at = 0; // read position
    let out = 0; // write position: CopyData bytes kept so far
    while (at < end) {
      if (this.#code === 0) {
        const code = chunk[at]!;
        if (code === ERROR_RESPONSE) return this.#finish(chunk, out, 'error', at);
        const known = code === COPY_DATA || code === COPY_DONE || code === COPY_OUT_RESPONSE;
        if (!known && !INTERSPERSED.has(code)) return this.#finish(chunk, out, 'done', at);
        this.#code = code;
        this.#lengthBytes = 4;
        this.#length = 0;
        at++;
        continue;
      }
      if (this.#lengthBytes > 0) {
        if (this.#lengthBytes === 4 && end - at >= 4) {
          this.#length = chunk.readUInt32BE(at);
          this.#lengthBytes = 0;
          at += 4;
        } else {
          this.#length = this.#length * 256 + chunk[at]!;
          this.#lengthBytes--;
          at++;
        }
        if (this.#lengthBytes > 0) continue;
        this.#remaining = this.#length - 4;
      }
      const take = Math.min(this.#remaining, end - at);
      if (this.#code === COPY_DATA && take > 0) {
        if (out !== at) chunk.copyWithin(out, at, at + take);
        out += take;
      }
      at += take;
      this.#remaining -= take;
      if (this.#remaining > 0) continue;
      const code = this.#code;
      this.#code = 0;
      if (code === COPY_DONE) return this.#finish(chunk, out, 'done', at);
    }
    return { data: out > 0 ? chunk.subarray(0, out) : undefined };
  }

  #finish(chunk: Buffer, out: number, end: 'done' | 'error', at: number): ParsedChunk {
    this.#over = true;
    return { data: out > 0 ? chunk.subarray(0, out) : undefined, end, rest: chunk.subarray(at) };
  }
}

/** The query object for `client.query(new CopyOut(sql))`: the copy's bytes, and its row count after. */
export class CopyOut extends Readable implements Submittable {
  readonly text: string;
  /** From CommandComplete, which comes after the stream has ended. */
  rowCount = 0;
  readonly #parser = new CopyOutParser();
  #connection: Connection | undefined;
  /** Set when the copy takes the socket's reads itself (pgSocket). */
  #divert: Divert | undefined;
  #pgOnData: ((chunk: Buffer) => void) | undefined;
  #wanted = false;
  #forwarding = false;
  #over = false;
  readonly #onReadable = (): void => this.#forward();

  constructor(text: string) {
    super();
    this.text = text;
  }

  /** Called by node-postgres when the query's turn comes. */
  submit(connection: Connection): void {
    this.#connection = connection;
    const socket = connection.stream as DivertableSocket;
    this.#divert = socket[DIVERT];
    if (this.#divert) {
      this.#divert((chunk) => this.#take(chunk));
      connection.query(this.text);
      return;
    }
    const handlers = socket.listeners('data') as ((chunk: Buffer) => void)[];
    if (handlers.length !== 1)
      throw new Error(`COPY: expected node-postgres' one data handler, found ${handlers.length}`);
    this.#pgOnData = handlers[0];
    socket.removeListener('data', this.#pgOnData!);
    socket.pause();
    socket.on('readable', this.#onReadable);
    connection.query(this.text);
  }

  override _read(): void {
    if (this.#divert) {
      // Restarts reads #take stopped; a no-op while the socket is reading.
      this.#connection?.stream.resume();
      return;
    }
    this.#wanted = true;
    this.#forward();
  }

  /** A diverted read: the chunk is ours. Answers false to stop the socket's reads. */
  #take(chunk: Buffer): boolean {
    const parsed = this.#parser.parse(chunk);
    let more = true;
    if (parsed.data) more = this.push(parsed.data);
    else releaseChunk(chunk);
    if (parsed.end) {
      this.#over = true;
      this.#divert!(undefined);
      const socket = this.#connection!.stream;
      // node-postgres may keep what it is given: a copy, so the chunk stays downstream's alone.
      if (parsed.rest!.length > 0) socket.emit('data', Buffer.from(parsed.rest!));
      if (parsed.end === 'done') this.push(null);
      return true;
    }
    return more;
  }

  #forward(): void {
    if (this.#forwarding || !this.#wanted || this.#over || !this.#connection) return;
    this.#forwarding = true;
    const socket = this.#connection.stream;
    let chunk: Buffer | null;
    // The socket has no encoding set: read() gives Buffers.
    while (this.#wanted && !this.#over && (chunk = socket.read() as Buffer | null) !== null) {
      const parsed = this.#parser.parse(chunk);
      if (parsed.data) this.#wanted = this.push(parsed.data);
      if (parsed.end) this.#handBack(parsed.rest!, parsed.end);
    }
    this.#forwarding = false;
  }

  /** The socket goes back to node-postgres with the bytes after the copy. */
  #handBack(rest: Buffer, end: 'done' | 'error'): void {
    this.#over = true;
    const socket = this.#connection!.stream;
    socket.removeListener('readable', this.#onReadable);
    socket.on('data', this.#pgOnData!);
    if (rest.length > 0) this.#pgOnData!(rest);
    // Resumed on the next tick: the handler above may have paused the socket for its own reasons.
    process.nextTick(() => socket.resume());
    // An ErrorResponse ends the stream through handleError instead.
    if (end === 'done') this.push(null);
  }

  /** node-postgres: the server refused the query or failed during the copy. */
  handleError(err: Error): void {
    this.destroy(err);
  }

  /** node-postgres: `COPY n`, the rows copied. */
  handleCommandComplete(msg: { text?: string } | undefined): void {
    const match = /COPY (\d+)/.exec(msg?.text ?? '');
    if (match) this.rowCount = Number(match[1]);
  }

  handleReadyForQuery(): void {}
}
