/**
 * The V8 flags every Ferry process starts with: `bin/ferry` (which the npm scripts run) and the test and
 * benchmark harnesses pass exactly these (runtime-flags.test.ts holds them to it), because V8 reads
 * them only when the process starts.
 *
 * `--max-semi-space-size=4` (MiB): V8 sizes the young generation for throughput by default, and a
 * streaming copy, which allocates a buffer or a string per chunk or row and drops it at once, fills
 * all of it between collections. Measured on a node copying 5 M rows MariaDB -> PostgreSQL (4 ranges):
 * peak RSS 286 MiB with V8's default, 177 MiB at 8, 160 MiB at 2, at the same speed; see bench/README.md.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
