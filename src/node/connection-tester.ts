/**
 * Runs the connection tests the service hands this node in heartbeat replies (`ferry linked-service
 * test`): connects to the store with the linked service's settings through the store's own connector
 * (the same code, errors and hints a copy meets), reads, writes when asked, and reports what it found.
 * The secret values are opened only inside the test, and never reported: a report carries the
 * connector's error message, which names the store, the object and the operation, not the secrets.
 */
import { randomBytes } from 'node:crypto';
import type { ConnectionTestReportT, ConnectionTestStepT, ConnectionTestT } from '../protocol/agent.ts';
import type { ResolvedEndpointT } from '../protocol/task.ts';
import type { ConnectorContext } from '../connectors/connector.ts';
import { FerryError, toFerryError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import { sinkFor, sourceFor } from './connector-registry.ts';

/**
 * How long one step (read, or write) may take. Both together stay under the API's default wait
 * (30 s, src/service/connection-tests.ts) with room for the heartbeat that hands the test out.
 */
export const STEP_TIMEOUT_MS = 12_000;
/** A test id is remembered this long, so a test handed out again (a lost reply) runs once. */
const REMEMBER_MS = 10 * 60_000;

export interface ConnectionTesterDeps {
  report(testId: string, report: ConnectionTestReportT): Promise<void>;
  /** Opens the endpoint's sealed secret values (sealed to this node for `testId`). */
  open(endpoint: ResolvedEndpointT, testId: string): ResolvedEndpointT;
  allowedRoots: readonly string[];
  log: Logger;
  stepTimeoutMs?: number;
}

export class ConnectionTester {
  readonly #deps: ConnectionTesterDeps;
  /** Test id -> when it was taken. */
  readonly #seen = new Map<string, number>();
  readonly #stop = new AbortController();

  constructor(deps: ConnectionTesterDeps) {
    this.#deps = deps;
  }

  /** Starts the tests not taken before; returns at once. */
  take(tests: readonly ConnectionTestT[]): void {
    const now = Date.now();
    for (const [id, at] of this.#seen) if (now - at > REMEMBER_MS) this.#seen.delete(id);
    for (const t of tests) {
      if (this.#seen.has(t.testId)) continue;
      this.#seen.set(t.testId, now);
      void this.#run(t);
    }
  }

  /** Cancels running tests (the node is stopping); they report what they got to. */
  stop(): void {
    this.#stop.abort();
  }

  async #run(t: ConnectionTestT): Promise<void> {
    const { endpoint } = t;
    const what = `${endpoint.type} linked service "${endpoint.linkedService}"`;
    let opened: ResolvedEndpointT | undefined;
    const read = await this.#step(`tried to read from ${what}`, async (ctx) => {
      opened = this.#deps.open(endpoint, t.testId);
      return (await sourceFor(endpoint.type)).checkRead(opened, ctx);
    });
    const report: ConnectionTestReportT = { read };
    if (t.write && read.ok && opened) {
      const target = opened;
      const probe = `ferry_connection_test_${randomBytes(5).toString('hex')}`;
      report.write = await this.#step(`tried to write to ${what}`, async (ctx) =>
        (await sinkFor(endpoint.type)).checkWrite(target, ctx, probe),
      );
    }
    try {
      await this.#deps.report(t.testId, report);
      this.#deps.log.info(
        { linkedService: endpoint.linkedService, read: read.ok, write: report.write?.ok },
        'connection test done',
      );
    } catch (err) {
      // The API call that asked has likely given up; nothing else waits for this answer.
      this.#deps.log.warn(
        { linkedService: endpoint.linkedService, err: toFerryError(err).message },
        'could not report a connection test',
      );
    }
  }

  async #step(tried: string, work: (ctx: ConnectorContext) => Promise<string>): Promise<ConnectionTestStepT> {
    const started = Date.now();
    const timeoutMs = this.#deps.stepTimeoutMs ?? STEP_TIMEOUT_MS;
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const detail = await work({ signal, allowedRoots: this.#deps.allowedRoots });
      return { ok: true, detail, ms: Date.now() - started };
    } catch (err) {
      const fe = signal.aborted && !this.#stop.signal.aborted ? timedOut(timeoutMs, err) : toFerryError(err);
      return {
        ok: false,
        detail: tried,
        error: { code: fe.code, message: fe.message, ...(fe.hint === undefined ? {} : { hint: fe.hint }) },
        ms: Date.now() - started,
      };
    }
  }
}

function timedOut(timeoutMs: number, cause: unknown): FerryError {
  return new FerryError('store_unreachable', `the store did not answer within ${timeoutMs / 1000} s`, {
    cause,
    hint: 'check the host and port, and that this node can reach them (a firewall that drops packets looks like this)',
  });
}
