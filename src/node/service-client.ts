/**
 * The node's calls to the service (outbound only). Errors come back as FerryErrors: the service's
 * problem body when it answered, `unavailable` when it could not be reached. Every reply the node
 * reads is checked against its protocol schema before it is used: a reply of the wrong shape (a
 * proxy's page, a service of another version) is a clear `unavailable` naming the route and what
 * is wrong, never a field that is silently undefined further on.
 */
import { closeAgents, jsonAgents, requestJson, type JsonAgents, type JsonResponse } from './json-request.ts';
import { FerryError, fromProblem, toFerryError } from '../common/errors.ts';
import { serviceTlsProblem } from '../common/tls.ts';
import type { Static, TSchema } from 'typebox';
import {
  ClaimResponse,
  HeartbeatResponse,
  KeyGatewayResponse,
  RegisterResponse,
  ReportsResponse,
  type ClaimRequestT,
  type ClaimResponseT,
  type CompleteRequestT,
  type ConnectionTestReportT,
  type HeartbeatRequestT,
  type HeartbeatResponseT,
  type KeyGatewayResponseT,
  type ProgressRequestT,
  type RegisterRequestT,
  type RegisterResponseT,
} from '../protocol/agent.ts';
import { validator, type Validator } from '../protocol/validate.ts';
import { ReportBatcher } from './report-batcher.ts';

/** The replies the node reads, compiled once. (Replies it does not read, `{ ok: true }`, are not checked.) */
const REPLIES = {
  register: validator(RegisterResponse),
  keyGateway: validator(KeyGatewayResponse),
  heartbeat: validator(HeartbeatResponse),
  claim: validator(ClaimResponse),
  reports: validator(ReportsResponse),
};

/** How many of a malformed reply's problems its error names (the first ones; the rest are alike). */
const PROBLEMS_SHOWN = 3;

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

  async #call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<unknown> {
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
    return parsed;
  }

  /**
   * A call whose reply the node reads: checked against `reply`. The error names the route and the
   * fields at fault by path and rule only, never by value (a heartbeat reply carries sealed secrets
   * and lease tokens).
   */
  async #ask<T extends TSchema>(
    reply: Validator<T>,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Static<T>> {
    const parsed = await this.#call(method, path, body, opts);
    if (reply.check(parsed)) return parsed;
    const problems = reply.problems(parsed);
    const shown = problems.slice(0, PROBLEMS_SHOWN).join('; ');
    const more = problems.length > PROBLEMS_SHOWN ? ` (and ${problems.length - PROBLEMS_SHOWN} more)` : '';
    throw new FerryError(
      'unavailable',
      `service ${this.#base}: ${method} ${path} answered in a shape this node does not understand: ${shown}${more}`,
      {
        retryable: true,
        hint: 'is the service the same Ferry version as this node, and nothing (a proxy) answers in its place?',
      },
    );
  }

  register(req: RegisterRequestT): Promise<RegisterResponseT> {
    return this.#ask(REPLIES.register, 'POST', '/api/v1/agent/register', req);
  }

  keyGateway(key: string): Promise<KeyGatewayResponseT> {
    return this.#ask(REPLIES.keyGateway, 'POST', '/api/v1/agent/key-gateway', { key });
  }

  heartbeat(req: HeartbeatRequestT, signal?: AbortSignal): Promise<HeartbeatResponseT> {
    return this.#ask(REPLIES.heartbeat, 'POST', '/api/v1/agent/heartbeat', req, signal ? { signal } : {});
  }

  claim(req: ClaimRequestT, signal: AbortSignal): Promise<ClaimResponseT> {
    return this.#ask(REPLIES.claim, 'POST', '/api/v1/agent/claim', req, {
      signal,
      timeoutMs: req.waitMs + 15_000,
    });
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
      (await this.#ask(REPLIES.reports, 'POST', '/api/v1/agent/reports', { reports })).results,
    single: async (report) => {
      const attempt = `/api/v1/agent/attempts/${encodeURIComponent(report.attemptId)}`;
      await ('progress' in report
        ? this.#call('POST', `${attempt}/progress`, report.progress)
        : this.#call('POST', `${attempt}/complete`, report.complete));
    },
  });

  async release(attemptId: string, reason: string): Promise<void> {
    await this.#call('POST', `/api/v1/agent/attempts/${encodeURIComponent(attemptId)}/release`, { reason });
  }

  /** The answer to a connection test handed to this node (src/node/connection-tester.ts). */
  async connectionTestReport(testId: string, report: ConnectionTestReportT): Promise<void> {
    await this.#call('POST', `/api/v1/agent/connection-tests/${encodeURIComponent(testId)}`, report);
  }

  async leave(): Promise<void> {
    await this.#call('DELETE', '/api/v1/agent/self');
  }

  async close(): Promise<void> {
    closeAgents(this.#agents);
    return Promise.resolve();
  }
}
