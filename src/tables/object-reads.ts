/**
 * Reads of one source object at a position, apart from its stream: what a sink fills its own buffers
 * with (DirectRead, SourceObject.direct in src/connectors/connector.ts) and what a reader of a format
 * looks at before it reads the rest (FilePeek: a Parquet file's footer, src/formats/decode-parquet.ts).
 * Sources implement them (src/connectors), sinks and formats read through them, so they live below
 * both.
 */

/** A look at a file's bytes at any position, not counted as the copy's (SourceObject.peek). */
export interface FilePeek {
  /** The object's size when it was opened. */
  size: number;
  /** `length` bytes from `position` (fewer only at the end). */
  read(position: number, length: number): Promise<Buffer>;
}

/**
 * Reads of one object at any position into the caller's buffers (SourceObject.direct). Calls may
 * overlap. What a sink publishes from direct reads is the object as it was opened: it calls
 * unchanged() after its last read and fails the stage (or the commit, for a file it reads then) if
 * that throws, so pieces read at different times are never published as one object.
 */
export interface DirectRead {
  /** The object's size when it was opened. */
  size: number;
  /**
   * Reads up to `length` bytes from `position` into `into` at `offset`; 0 at the end. Counted as the
   * copy's bytes read, and held to its rate limit.
   */
  read(into: Buffer, offset: number, length: number, position: number): Promise<number>;
  /**
   * read() without counting: a second look at bytes already read (hashing in order what was sent
   * out of order, or sending again what a failed request lost).
   */
  reread(into: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Throws a retryable store error when the object changed since it was opened (size or time). */
  unchanged(): Promise<void>;
  /**
   * Keeps the object open after its stream is destroyed (the executor destroys it once stageDirect
   * returns), until the function returned is called: a sink that publishes a small file whole at
   * commit reads it only then. Optional: without it a sink stages every file now.
   */
  keep?(): () => void;
}
