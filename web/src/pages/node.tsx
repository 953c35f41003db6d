/**
 * One node: its figures now, and charts of CPU, memory, network and jobs running/limit over the last
 * hour or day (GET .../metrics?window=1h|24h); the gateway's events about it. A service without the
 * metrics route says so instead of the charts.
 */
import { useState } from 'react';
import { api, enc, isMissingRoute } from '../api.ts';
import { usePoll } from '../poll.ts';
import { paths } from '../routes.ts';
import { bytes, percent, rate } from '../format.ts';
import type { GatewayNodes, NodeMetrics } from '../types.ts';
import { ErrorBox, Freshness, Link, Loading, StatusCell } from '../components/ui.tsx';
import { LineChart } from '../components/chart.tsx';
import { EventsPanel } from './gateway.tsx';

export function NodePage({ gateway, node }: { gateway: string; node: string }) {
  const [span, setSpan] = useState<'1h' | '24h'>('1h');
  const nodes = usePoll(() => api<GatewayNodes>('GET', `/gateways/${enc(gateway)}/nodes`), [gateway]);
  const metrics = usePoll(
    () => api<NodeMetrics>('GET', `/gateways/${enc(gateway)}/nodes/${enc(node)}/metrics?window=${span}`),
    [gateway, node, span],
    span === '1h' ? 10_000 : 60_000,
  );
  const n = nodes.data?.nodes.find((x) => x.name === node);
  const live = n !== undefined && n.status !== 'Offline';
  const pts = metrics.data?.points ?? [];
  const times = pts.map((p) => p.at);
  // A point of a node that was not reporting has no figures: the line breaks there.
  const v = (f: (p: (typeof pts)[number]) => number | null) =>
    pts.map((p) => (p.status === 'Offline' ? null : f(p)));
  return (
    <section>
      <p className="crumbs">
        <Link to={paths.gateways()}>Gateways</Link> / <Link to={paths.gateway(gateway)}>{gateway}</Link> /
      </p>
      <h1>Node {node}</h1>
      {nodes.data === undefined ? (
        nodes.error !== undefined ? (
          <ErrorBox error={nodes.error} title="Cannot read the node" onRetry={nodes.reload} />
        ) : (
          <Loading what="the node" />
        )
      ) : !n ? (
        <ErrorBox
          error={new Error(`gateway ${gateway} has no node named ${node} (it may have been deleted)`)}
          title="No such node"
        />
      ) : (
        <dl className="facts" id="node-facts">
          <div>
            <dt>Status</dt>
            <dd>
              <StatusCell status={n.status} reason={n.statusReason} hint={n.statusHint} />
            </dd>
          </div>
          <div>
            <dt>Role</dt>
            <dd>{n.role}</dd>
          </div>
          <div>
            <dt>CPU</dt>
            <dd>{live ? percent(n.cpuPercent) : '-'}</dd>
          </div>
          <div>
            <dt>Available memory</dt>
            <dd>{live ? `${bytes(n.memoryAvailableBytes)} of ${bytes(n.memoryTotalBytes)}` : '-'}</dd>
          </div>
          <div>
            <dt>Network in / out</dt>
            <dd>{live ? `${rate(n.networkInBytesPerSec)} / ${rate(n.networkOutBytesPerSec)}` : '-'}</dd>
          </div>
          <div>
            <dt>Jobs running / limit</dt>
            <dd>
              {live ? n.jobsRunning : '-'} / {n.jobsLimit}
            </dd>
          </div>
        </dl>
      )}
      <Freshness at={nodes.at} error={nodes.data ? nodes.error : undefined} />

      <div className="toolbar">
        <h2>History</h2>
        <div role="group" aria-label="Window" className="segmented">
          {(['1h', '24h'] as const).map((w) => (
            <button key={w} type="button" aria-pressed={span === w} onClick={() => setSpan(w)}>
              {w === '1h' ? 'Last hour' : 'Last 24 hours'}
            </button>
          ))}
        </div>
      </div>
      {metrics.data === undefined ? (
        metrics.error !== undefined ? (
          isMissingRoute(metrics.error) ? (
            <p className="empty" id="charts-unavailable">
              History is not available: this service does not keep node metrics yet (it has no metrics route).
              The figures above are live.
            </p>
          ) : (
            <ErrorBox error={metrics.error} title="Cannot read the history" onRetry={metrics.reload} />
          )
        ) : (
          <Loading what="the history" />
        )
      ) : (
        <div className="charts" id="charts">
          <LineChart
            title="CPU"
            times={times}
            max={100}
            format={(x) => `${x.toFixed(0)}%`}
            series={[{ name: 'CPU', className: 's1', values: v((p) => p.cpuPercent) }]}
          />
          <LineChart
            title="Memory"
            times={times}
            format={bytes}
            series={[
              { name: 'available', className: 's1', values: v((p) => p.memoryAvailableBytes) },
              { name: 'total', className: 's2', values: v((p) => p.memoryTotalBytes) },
            ]}
          />
          <LineChart
            title="Network"
            times={times}
            format={rate}
            series={[
              { name: 'in', className: 's1', values: v((p) => p.networkInBytesPerSec) },
              { name: 'out', className: 's2', values: v((p) => p.networkOutBytesPerSec) },
            ]}
          />
          <LineChart
            title="Jobs"
            times={times}
            format={(x) => x.toFixed(0)}
            series={[
              { name: 'running', className: 's1', values: v((p) => p.running) },
              { name: 'limit', className: 's2', values: v((p) => p.limit) },
            ]}
          />
          <p className="sub">One point every {metrics.data.resolutionSeconds} s.</p>
        </div>
      )}
      <EventsPanel gateway={gateway} node={node} />
    </section>
  );
}
