/**
 * A gateway's page: its status and dispatcher (and why), the scale advice, the nodes table (the
 * seed's monitoring columns, live) with the node actions, its keys, and its events (dispatcher
 * changes with their reasons).
 */
import { useState } from 'react';
import { api, enc } from '../api.ts';
import { usePoll } from '../poll.ts';
import { paths } from '../routes.ts';
import { ago, time } from '../format.ts';
import type { GatewayEvent, GatewayNodes } from '../types.ts';
import { Empty, ErrorBox, Freshness, Link, Loading, StatusCell } from '../components/ui.tsx';
import { NodesTable } from '../components/nodes-table.tsx';
import { AddNode, KeysPanel } from '../components/keys.tsx';
import { AdvicePanel } from '../components/advice.tsx';

export function GatewayPage({ name }: { name: string }) {
  const nodes = usePoll(() => api<GatewayNodes>('GET', `/gateways/${enc(name)}/nodes`), [name]);
  const [advanced, setAdvanced] = useState(false);
  const [adding, setAdding] = useState(false);
  if (nodes.data === undefined)
    return (
      <section>
        <p className="crumbs">
          <Link to={paths.gateways()}>Gateways</Link> /
        </p>
        <h1>{name}</h1>
        {nodes.error !== undefined ? (
          <ErrorBox error={nodes.error} title={`Cannot show gateway ${name}`} onRetry={nodes.reload} />
        ) : (
          <Loading what="the gateway" />
        )}
      </section>
    );
  const gw = nodes.data.gateway;
  return (
    <section>
      <p className="crumbs">
        <Link to={paths.gateways()}>Gateways</Link> /
      </p>
      <h1>
        Gateway {gw.name} <span className="sub">version {gw.version ?? '-'}</span>
      </h1>
      <dl className="facts" id="gateway-facts">
        <div>
          <dt>Status</dt>
          <dd>
            <StatusCell status={gw.status} reason={gw.statusReason} hint={gw.statusHint} />
          </dd>
        </div>
        <div>
          <dt>Dispatcher</dt>
          <dd id="dispatcher">
            <strong>{gw.dispatcher ?? 'none'}</strong> (epoch {gw.epoch}
            {gw.dispatcherSince && `, since ${time(gw.dispatcherSince)}`})
            {gw.dispatcherReason && <div className="hint">{gw.dispatcherReason}</div>}
          </dd>
        </div>
        <div>
          <dt>Nodes</dt>
          <dd>
            {gw.nodes}
            {gw.maxNodes !== null && ` of at most ${gw.maxNodes}`}
          </dd>
        </div>
        <div>
          <dt>Queue</dt>
          <dd id="queue">
            {gw.queue === undefined
              ? '-'
              : gw.queue.tasks === 0
                ? 'no task waiting'
                : `${gw.queue.tasks} task${gw.queue.tasks === 1 ? '' : 's'} waiting, the oldest ${Math.round(gw.queue.oldestWaitSeconds ?? 0)} s`}
          </dd>
        </div>
      </dl>

      <AdvicePanel gateway={name} />

      <div className="toolbar">
        <h2>Nodes</h2>
        <label className="toggle">
          <input type="checkbox" checked={advanced} onChange={(e) => setAdvanced(e.target.checked)} />{' '}
          Advanced columns
        </label>
        <button type="button" onClick={() => setAdding(true)}>
          Add a node
        </button>
      </div>
      {nodes.data.nodes.length === 0 ? (
        <Empty>
          No node has joined this gateway yet. Press <strong>Add a node</strong> for the key and the command
          to run on the new machine.
        </Empty>
      ) : (
        <NodesTable gateway={name} nodes={nodes.data.nodes} advanced={advanced} onChanged={nodes.reload} />
      )}
      <Freshness at={nodes.at} error={nodes.error} />
      <AddNode
        gateway={name}
        open={adding}
        onClose={() => setAdding(false)}
        joined={nodes.data.nodes.map((n) => n.name)}
      />
      <KeysPanel gateway={name} />
      <EventsPanel gateway={name} />
    </section>
  );
}

export function EventsPanel({ gateway, node }: { gateway: string; node?: string }) {
  const [onlyDispatcher, setOnlyDispatcher] = useState(false);
  const ev = usePoll(
    () => api<{ events: GatewayEvent[] }>('GET', `/gateways/${enc(gateway)}/events?limit=100`),
    [gateway],
  );
  const shown = (ev.data?.events ?? []).filter(
    (e) =>
      (!onlyDispatcher || e.kind === 'dispatcher_changed') &&
      (node === undefined ||
        new RegExp(`\\b${node.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(e.message)),
  );
  return (
    <section className="panel" aria-labelledby="events-title">
      <div className="toolbar">
        <h2 id="events-title">{node ? `Events about ${node}` : 'Events'}</h2>
        <label className="toggle">
          <input
            type="checkbox"
            checked={onlyDispatcher}
            onChange={(e) => setOnlyDispatcher(e.target.checked)}
          />{' '}
          Dispatcher changes only
        </label>
      </div>
      {ev.data === undefined ? (
        ev.error !== undefined ? (
          <ErrorBox error={ev.error} title="Cannot read the events" onRetry={ev.reload} />
        ) : (
          <Loading what="events" />
        )
      ) : shown.length === 0 ? (
        <Empty>No events yet: node joins, dispatcher changes, drains and lost attempts show here.</Empty>
      ) : (
        <ol className="events" id="events">
          {shown.map((e, i) => (
            <li key={`${e.at}-${i}`} className={e.kind === 'dispatcher_changed' ? 'dispatcher-change' : ''}>
              <time dateTime={e.at} title={time(e.at)}>
                {ago(e.at)}
              </time>{' '}
              <span className="kind">{e.kind.replace(/_/g, ' ')}</span>{' '}
              <span className="message">{e.message}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
