/** The pipelines (start a run of one) and the latest runs, live. */
import { useState } from 'react';
import { api, enc } from '../api.ts';
import { usePoll } from '../poll.ts';
import { navigate, paths } from '../routes.ts';
import { between, duration, time } from '../format.ts';
import type { Pipeline, Run, RunDetail } from '../types.ts';
import { Badge, Empty, ErrorBox, Freshness, Link, Loading } from '../components/ui.tsx';

export function PipelinesPage() {
  const pipelines = usePoll(() => api<{ pipelines: Pipeline[] }>('GET', '/pipelines'), [], 10_000);
  const runs = usePoll(() => api<{ runs: Run[] }>('GET', '/runs?limit=50'), []);
  const [failure, setFailure] = useState<{ name: string; error: unknown } | undefined>(undefined);
  const [starting, setStarting] = useState<string | undefined>(undefined);
  const start = async (name: string): Promise<void> => {
    setStarting(name);
    setFailure(undefined);
    try {
      const run = await api<RunDetail>('POST', `/pipelines/${enc(name)}/runs`);
      navigate(paths.run(run.id));
    } catch (error) {
      setFailure({ name, error });
    } finally {
      setStarting(undefined);
    }
  };
  return (
    <section>
      <h1>Pipelines</h1>
      {failure && <ErrorBox error={failure.error} title={`Cannot start a run of ${failure.name}`} />}
      {pipelines.data === undefined ? (
        pipelines.error !== undefined ? (
          <ErrorBox error={pipelines.error} title="Cannot list the pipelines" onRetry={pipelines.reload} />
        ) : (
          <Loading what="pipelines" />
        )
      ) : pipelines.data.pipelines.length === 0 ? (
        <Empty>
          No pipeline yet. Write one in YAML and apply it with <code>ferry pipeline apply -f FILE</code> (see
          the README&apos;s tour).
        </Empty>
      ) : (
        <div className="table-wrap">
          <table id="pipelines">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col">Activities</th>
                <th scope="col">Updated</th>
                <th scope="col">Run</th>
              </tr>
            </thead>
            <tbody>
              {pipelines.data.pipelines.map((p) => (
                <tr key={p.name} data-pipeline={p.name}>
                  <th scope="row">{p.name}</th>
                  <td className="num">{p.version}</td>
                  <td>{p.spec.activities.map((a) => a.name).join(', ')}</td>
                  <td>{time(p.updatedAt)}</td>
                  <td>
                    <button
                      type="button"
                      disabled={starting === p.name}
                      aria-label={`Start a run of ${p.name}`}
                      onClick={() => void start(p.name)}
                    >
                      {starting === p.name ? 'Starting…' : 'Start a run'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Runs</h2>
      {runs.data === undefined ? (
        runs.error !== undefined ? (
          <ErrorBox error={runs.error} title="Cannot list the runs" onRetry={runs.reload} />
        ) : (
          <Loading what="runs" />
        )
      ) : runs.data.runs.length === 0 ? (
        <Empty>
          No run yet. Start one above, or with <code>ferry pipeline run NAME</code>.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table id="runs">
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Pipeline</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {runs.data.runs.map((r) => (
                <tr key={r.id} data-run={r.id}>
                  <th scope="row">
                    <Link to={paths.run(r.id)}>{r.id}</Link>
                  </th>
                  <td>
                    {r.pipeline} <span className="sub">v{r.pipelineVersion}</span>
                  </td>
                  <td>
                    <Badge status={r.status} />
                  </td>
                  <td>{time(r.startedAt ?? r.createdAt)}</td>
                  <td className="num">{duration(between(r.startedAt, r.finishedAt))}</td>
                  <td className="error-text">{r.error ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Freshness at={runs.at} error={runs.data ? runs.error : undefined} />
    </section>
  );
}
