/**
 * The nodes table: the seed's monitoring columns (name, status with reason and hint, version,
 * available memory, CPU, network in/out, jobs running/limit, role; with "advanced": network,
 * credential status, queue, last heartbeat, peer address), and each node's actions: set its limit,
 * drain or resume it, delete it (confirmed). A node that is not reporting (Offline) shows "-" for
 * its figures, not the last ones it sent, which would read as live.
 */
import { useState, type FormEvent } from 'react';
import { api, enc } from '../api.ts';
import { ago, bytes, percent, rate, time } from '../format.ts';
import { paths } from '../routes.ts';
import type { NodeInfo } from '../types.ts';
import { Confirm, Dialog } from './confirm.tsx';
import { Badge, ErrorBox, Link, StatusCell } from './ui.tsx';

export function NodesTable({
  gateway,
  nodes,
  advanced,
  onChanged,
}: {
  gateway: string;
  nodes: NodeInfo[];
  advanced: boolean;
  onChanged: () => void;
}) {
  const [failure, setFailure] = useState<{ what: string; error: unknown } | undefined>(undefined);
  const [busy, setBusy] = useState<string | undefined>(undefined);
  const [limitOf, setLimitOf] = useState<NodeInfo | undefined>(undefined);
  const [deleting, setDeleting] = useState<NodeInfo | undefined>(undefined);
  const base = (n: NodeInfo): string => `/gateways/${enc(gateway)}/nodes/${enc(n.name)}`;

  const act = async (what: string, key: string, call: () => Promise<unknown>): Promise<boolean> => {
    setBusy(key);
    setFailure(undefined);
    try {
      await call();
      onChanged();
      return true;
    } catch (error) {
      setFailure({ what, error });
      return false;
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <>
      {failure && <ErrorBox error={failure.error} title={failure.what} />}
      <div className="table-wrap">
        <table id="nodes" className={advanced ? 'advanced' : ''}>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Version</th>
              <th scope="col">Available memory</th>
              <th scope="col">CPU</th>
              <th scope="col">Jobs running / limit</th>
              <th scope="col">Role</th>
              {advanced && (
                <>
                  <th scope="col">Network in</th>
                  <th scope="col">Network out</th>
                  <th scope="col">Credentials</th>
                  <th scope="col">Queue</th>
                  <th scope="col">Last heartbeat</th>
                  <th scope="col">Peer address</th>
                </>
              )}
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {nodes.map((n) => {
              const live = n.status !== 'Offline';
              return (
                <tr key={n.name} data-node={n.name} data-status={n.status}>
                  <th scope="row" data-col="name">
                    <Link to={paths.node(gateway, n.name)}>{n.name}</Link>
                  </th>
                  <td data-col="status">
                    <StatusCell status={n.status} reason={n.statusReason} hint={n.statusHint} />
                    {n.drain && <Badge status={n.drain} />}
                  </td>
                  <td data-col="version">{n.version}</td>
                  <td data-col="memory" className="num">
                    {live ? bytes(n.memoryAvailableBytes) : '-'}
                    {live && n.memoryTotalBytes !== null && (
                      <span className="sub"> of {bytes(n.memoryTotalBytes)}</span>
                    )}
                  </td>
                  <td data-col="cpu" className="num">
                    {live ? percent(n.cpuPercent) : '-'}
                  </td>
                  <td data-col="jobs" className="num">
                    {live ? n.jobsRunning : '-'} / {n.jobsLimit}
                    {!n.limitIsDefault && (
                      <span className="sub" title="set by an operator">
                        {' '}
                        (set)
                      </span>
                    )}
                  </td>
                  <td data-col="role">{n.role}</td>
                  {advanced && (
                    <>
                      <td data-col="network-in" className="num">
                        {live ? rate(n.networkInBytesPerSec) : '-'}
                      </td>
                      <td data-col="network-out" className="num">
                        {live ? rate(n.networkOutBytesPerSec) : '-'}
                      </td>
                      <td data-col="credentials">
                        {live && n.credentials ? (
                          <span className={n.credentials.status === 'out of sync' ? 'warn-text' : ''}>
                            {n.credentials.status}
                          </span>
                        ) : (
                          '-'
                        )}
                      </td>
                      <td data-col="queue" className="num">
                        {n.queue ?? '-'}
                      </td>
                      <td data-col="heartbeat" title={time(n.lastSeenAt)}>
                        {ago(n.lastSeenAt)}
                      </td>
                      <td data-col="peer">
                        {n.peerAddress}
                        {n.tls ? ' (TLS)' : ''}
                      </td>
                    </>
                  )}
                  <td data-col="actions" className="actions">
                    <button
                      type="button"
                      onClick={() => setLimitOf(n)}
                      aria-label={`Set the limit of ${n.name}`}
                    >
                      Set limit
                    </button>
                    {n.drain === null ? (
                      <button
                        type="button"
                        disabled={busy === `drain-${n.name}`}
                        aria-label={`Drain ${n.name}`}
                        onClick={() =>
                          void act(`Cannot drain ${n.name}`, `drain-${n.name}`, () =>
                            api('POST', `${base(n)}/drain`),
                          )
                        }
                      >
                        Drain
                      </button>
                    ) : (
                      <button
                        type="button"
                        disabled={busy === `resume-${n.name}`}
                        aria-label={`Resume ${n.name}`}
                        onClick={() =>
                          void act(`Cannot resume ${n.name}`, `resume-${n.name}`, () =>
                            api('POST', `${base(n)}/resume`),
                          )
                        }
                      >
                        Resume
                      </button>
                    )}
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Delete ${n.name}`}
                      onClick={() => setDeleting(n)}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <LimitDialog
        node={limitOf}
        onClose={() => setLimitOf(undefined)}
        onSave={(limit) => {
          const n = limitOf;
          if (!n) return Promise.resolve(false);
          return act(`Cannot set the limit of ${n.name}`, `limit-${n.name}`, () =>
            api('PUT', `${base(n)}/limit`, { limit }),
          );
        }}
      />
      <Confirm
        open={deleting !== undefined}
        title={`Delete node ${deleting?.name ?? ''}?`}
        body={
          <p>
            The node leaves gateway <strong>{gateway}</strong>: its running attempts are lost and run again
            elsewhere, and it can no longer call the service. To bring it back, register it again with a key.
          </p>
        }
        action="Delete the node"
        busy={deleting !== undefined && busy === `delete-${deleting.name}`}
        onClose={() => setDeleting(undefined)}
        onConfirm={() => {
          const n = deleting;
          setDeleting(undefined);
          if (n) void act(`Cannot delete ${n.name}`, `delete-${n.name}`, () => api('DELETE', base(n)));
        }}
      />
    </>
  );
}

function LimitDialog({
  node,
  onClose,
  onSave,
}: {
  node: NodeInfo | undefined;
  onClose: () => void;
  onSave: (limit: number | null) => Promise<boolean>;
}) {
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const submit = async (e: FormEvent, limit: number | null): Promise<void> => {
    e.preventDefault();
    if (limit !== null && (!Number.isInteger(limit) || limit < 1 || limit > 10000)) {
      setProblem('the limit is a whole number from 1 to 10000');
      return;
    }
    setProblem(undefined);
    if (await onSave(limit)) {
      setValue('');
      onClose();
    } else onClose(); // the table shows the service's error
  };
  return (
    <Dialog
      title={`Concurrent jobs limit of ${node?.name ?? ''}`}
      open={node !== undefined}
      onClose={onClose}
    >
      <form onSubmit={(e) => void submit(e, Number(value))}>
        <p>
          Now {node?.jobsLimit} ({node?.limitIsDefault ? "the node's default" : 'set by an operator'}). The
          new limit applies at once; running jobs above it finish.
        </p>
        <label htmlFor="limit">New limit</label>
        <input
          id="limit"
          type="number"
          min={1}
          max={10000}
          step={1}
          required
          value={value}
          onChange={(e) => setValue(e.target.value)}
          autoFocus
        />
        {problem && <p className="error">{problem}</p>}
        <div className="dialog-buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" onClick={(e) => void submit(e, null)} disabled={node?.limitIsDefault}>
            Back to the node&apos;s default
          </button>
          <button type="submit">Set the limit</button>
        </div>
      </form>
    </Dialog>
  );
}
