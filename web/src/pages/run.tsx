/**
 * A run: its status, error and progress (live while it runs), its activities, and every task with
 * the node that ran it, rows, bytes, checksums, duration, status and error; each task's attempts
 * (a lost one on a node that died, then the one that succeeded elsewhere). Tasks filter by node.
 */
import { Fragment, useState } from 'react';
import { api, enc } from '../api.ts';
import { usePoll } from '../poll.ts';
import { paths } from '../routes.ts';
import { between, bytes, duration, time } from '../format.ts';
import type { RunDetail } from '../types.ts';
import { Badge, Empty, ErrorBox, Freshness, Link, Loading } from '../components/ui.tsx';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

export function RunPage({ id }: { id: string }) {
  const [done, setDone] = useState(false);
  const run = usePoll(
    async () => {
      const r = await api<RunDetail>('GET', `/runs/${enc(id)}`);
      setDone(FINISHED.has(r.status));
      return r;
    },
    [id],
    done ? null : 2000,
  );
  const [node, setNode] = useState('');
  const [open, setOpen] = useState<string | undefined>(undefined);
  if (run.data === undefined)
    return (
      <section>
        <p className="crumbs">
          <Link to={paths.pipelines()}>Pipelines and runs</Link> /
        </p>
        <h1>Run {id}</h1>
        {run.error !== undefined ? (
          <ErrorBox error={run.error} title="Cannot show the run" onRetry={run.reload} />
        ) : (
          <Loading what="the run" />
        )}
      </section>
    );
  const r = run.data;
  const p = r.progress;
  const nodes = [...new Set(r.tasks.flatMap((t) => t.attemptList.map((a) => a.node)))].sort();
  const tasks = node ? r.tasks.filter((t) => t.attemptList.some((a) => a.node === node)) : r.tasks;
  const pct = p.tasksTotal > 0 ? Math.round((100 * p.tasksDone) / p.tasksTotal) : 0;
  return (
    <section>
      <p className="crumbs">
        <Link to={paths.pipelines()}>Pipelines and runs</Link> /
      </p>
      <h1>
        Run <code>{r.id}</code> of {r.pipeline} <span className="sub">v{r.pipelineVersion}</span>
      </h1>
      <dl className="facts" id="run-facts">
        <div>
          <dt>Status</dt>
          <dd id="run-status">
            <Badge status={r.status} />
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{time(r.startedAt ?? r.createdAt)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{duration(between(r.startedAt, r.finishedAt))}</dd>
        </div>
        <div>
          <dt>Moved</dt>
          <dd id="run-moved">
            {p.rows} rows, {bytes(p.bytes)}
          </dd>
        </div>
      </dl>
      {r.error && (
        <div className="error" role="alert" id="run-error">
          <strong>The run failed:</strong> {r.error}
        </div>
      )}
      <div className="progress" id="run-progress">
        <progress max={Math.max(1, p.tasksTotal)} value={p.tasksDone} aria-label="Tasks done" />
        <span>
          {p.tasksDone} of {p.tasksTotal}
          {p.planned || done ? '' : '+'} tasks done ({pct}%), {p.tasksRunning} running
          {p.tasksFailed > 0 ? `, ${p.tasksFailed} failed` : ''}
        </span>
      </div>
      {!done && <Freshness at={run.at} error={run.error} />}

      <h2>Activities</h2>
      <div className="table-wrap">
        <table id="activities">
          <thead>
            <tr>
              <th scope="col">Activity</th>
              <th scope="col">Status</th>
              <th scope="col">Duration</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {r.activities.map((a) => (
              <tr key={a.name}>
                <th scope="row">{a.name}</th>
                <td>
                  <Badge status={a.status} />
                </td>
                <td className="num">{duration(between(a.startedAt, a.finishedAt))}</td>
                <td className="error-text">{a.error ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <div className="toolbar">
        <h2>Tasks</h2>
        <label className="toggle">
          Node{' '}
          <select id="task-node" value={node} onChange={(e) => setNode(e.target.value)}>
            <option value="">every node</option>
            {nodes.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </div>
      {tasks.length === 0 ? (
        <Empty>{node ? `No task ran on ${node}.` : 'No task yet: the run is being planned.'}</Empty>
      ) : (
        <div className="table-wrap">
          <table id="tasks">
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col">Status</th>
                <th scope="col">Node</th>
                <th scope="col">Attempts</th>
                <th scope="col">Rows</th>
                <th scope="col">Bytes</th>
                <th scope="col">Duration</th>
                <th scope="col">Checksums (SHA-256)</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {tasks.map((t) => {
                // While an attempt runs, its progress reports are the task's live figures.
                const current = t.status === 'running' ? t.attemptList.at(-1) : undefined;
                return (
                  <Fragment key={t.id}>
                    <tr data-task={t.id} data-status={t.status}>
                      <th scope="row">
                        {t.activity} {t.kind} #{t.index}
                        {t.partitions !== null && <span className="sub"> ({t.partitions} parts)</span>}
                      </th>
                      <td data-col="status">
                        <Badge status={t.status} />
                      </td>
                      <td data-col="node">{t.node ?? '-'}</td>
                      <td className="num">
                        <button
                          type="button"
                          className="link"
                          aria-expanded={open === t.id}
                          onClick={() => setOpen(open === t.id ? undefined : t.id)}
                        >
                          {t.attempts}
                        </button>
                      </td>
                      <td data-col="rows" className="num">
                        {current ? current.rows : t.rows}
                      </td>
                      <td data-col="bytes" className="num">
                        {bytes(current ? current.bytes : t.bytes)}
                      </td>
                      <td className="num">{duration(t.durationMs)}</td>
                      <td data-col="checksums" className="checksums">
                        {t.outputs.length === 0
                          ? '-'
                          : t.outputs.map((o) => (
                              <div key={o.name} title={`${o.name}: ${o.sha256}`}>
                                {o.name} <code>{o.sha256.slice(0, 12)}</code>
                              </div>
                            ))}
                      </td>
                      <td data-col="error" className="error-text">
                        {t.error ?? ''}
                      </td>
                    </tr>
                    {open === t.id && (
                      <tr className="attempts">
                        <td colSpan={9}>
                          <table>
                            <thead>
                              <tr>
                                <th scope="col">Attempt on node</th>
                                <th scope="col">Status</th>
                                <th scope="col">Epoch</th>
                                <th scope="col">Rows</th>
                                <th scope="col">Bytes</th>
                                <th scope="col">Duration</th>
                                <th scope="col">Error</th>
                              </tr>
                            </thead>
                            <tbody>
                              {t.attemptList.map((a) => (
                                <tr key={a.id}>
                                  <td>{a.node}</td>
                                  <td>
                                    <Badge status={a.status} />
                                  </td>
                                  <td className="num">{a.epoch}</td>
                                  <td className="num">{a.rows}</td>
                                  <td className="num">{bytes(a.bytes)}</td>
                                  <td className="num">{duration(between(a.startedAt, a.finishedAt))}</td>
                                  <td className="error-text">{a.error ?? ''}</td>
                                </tr>
                              ))}
                            </tbody>
                          </table>
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
