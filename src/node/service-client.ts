/**
 * The node's calls to the service (outbound only). Errors come back as FerryErrors: the service's
 * problem body when it answered, `unavailable` when it could not be reached.
 */
import { closeAgents, jsonAgents, requestJson, type JsonAgents, type JsonResponse } from './json-request.ts';
import { FerryError, fromProblem, toFerryError } from '../common/errors.ts';
import { serviceTlsProblem } from '../common/tls.ts';
import type {
  ClaimRequestT,
  ClaimResponseT,
  CompleteRequestT,
  ConnectionTestReportT,
  HeartbeatRequestT,
  HeartbeatResponseT,
  ProgressRequestT,
  RegisterRequestT,
  RegisterResponseT,
  ReportsResponseT,
} from '../protocol/agent.ts';
import { ReportBatcher } from './report-batcher.ts';

export class ServiceClient {
  readonly #base: string;
  #token: string | undefined;
  readonly #agents: JsonAgents;

  /** `ca`: the PEM CA bundle that signed the service's HTTPS certificate (else the system's CAs). */
  constructor(baseUrl: string, token?: string, ca?: Buffer) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#token = token;
    this.#agents = jsonAgents({ maxSockets: 16, ca });
  }

  get baseUrl(): string {
    return this.#base;
  }

  setToken(token: string): void {
    this.#token = token;
  }

  async #call<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<T> {
    let res: JsonResponse;
    try {
      res = await requestJson(`${this.#base}${path}`, {
        method,
        agents: this.#agents,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? 15_000,
        context: `service ${this.#base}`,
      });
    } catch (err) {
      const tls = serviceTlsProblem(err, this.#base);
      if (tls) throw tls;
      const fe = toFerryError(err, `service ${this.#base}`);
      if (fe.code === 'internal') throw new FerryError('unavailable', fe.message, { cause: err });
      throw fe;
    }
    let parsed: unknown;
    try {
      parsed = res.text.length > 0 ? JSON.parse(res.text) : undefined;
    } catch (err) {
      // Not the service's JSON: a proxy's error page while the service restarts (503: retried).
      if (res.status >= 400) throw fromProblem(undefined, res.status);
      throw new FerryError('unavailable', `service ${this.#base}: the answer is not JSON`, { cause: err });
    }
    if (res.status >= 400) throw fromProblem(parsed, res.status);
    return parsed as T;
  }

  register(req: RegisterRequestT): Promise<RegisterResponseT> {
    return this.#call('POST', '/api/v1/agent/register', req);
  }

  keyGateway(key: string): Promise<{ gatewayId: string; gatewayName: string }> {
    return this.#call('POST', '/api/v1/agent/key-gateway', { key });
  }

  heartbeat(req: HeartbeatRequestT, signal?: AbortSignal): Promise<HeartbeatResponseT> {
    return this.#call('POST', '/api/v1/agent/heartbeat', req, signal ? { signal } : {});
  }

  claim(req: ClaimRequestT, signal: AbortSignal): Promise<ClaimResponseT> {
    return this.#call('POST', '/api/v1/agent/claim', req, { signal, timeoutMs: req.waitMs + 15_000 });
  }

  /** Renews an attempt's lease with its progress; gathered with other reports (report-batcher.ts). */
  progress(attemptId: string, p: ProgressRequestT): Promise<void> {
    return this.#reports.submit({ attemptId, progress: p });
  }

  /** An attempt's outcome; gathered with other reports. */
  complete(attemptId: string, c: CompleteRequestT): Promise<void> {
    return this.#reports.submit({ attemptId, complete: c });
  }

  readonly #reports = new ReportBatcher({
    batch: async (reports) =>
      (await this.#call<ReportsResponseT>('POST', '/api/v1/agent/reports', { reports })).results,
    single: (report) => {
      const attempt = `/api/v1/agent/attempts/${encodeURIComponent(report.attemptId)}`;
      return 'progress' in report
        ? this.#call('POST', `${attempt}/progress`, report.progress)
        : this.#call('POST', `${attempt}/complete`, report.complete);
    },
  });

  release(attemptId: string, reason: string): Promise<void> {
    return this.#call('POST', `/api/v1/agent/attempts/${encodeURIComponent(attemptId)}/release`, { reason });
  }

  /** The answer to a connection test handed to this node (src/node/connection-tester.ts). */
  connectionTestReport(testId: string, report: ConnectionTestReportT): Promise<void> {
    return this.#call('POST', `/api/v1/agent/connection-tests/${encodeURIComponent(testId)}`, report);
  }

  leave(): Promise<void> {
    return this.#call('DELETE', '/api/v1/agent/self');
  }

  async close(): Promise<void> {
    closeAgents(this.#agents);
    return Promise.resolve();
  }
}
