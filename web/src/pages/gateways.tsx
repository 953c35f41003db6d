/** Every gateway with its status (and why), version, node count and dispatcher; live. */
import { api } from '../api.ts';
import { usePoll } from '../poll.ts';
import { paths } from '../routes.ts';
import type { Gateway } from '../types.ts';
import { Empty, ErrorBox, Freshness, Link, Loading, StatusCell } from '../components/ui.tsx';

export function GatewaysPage() {
  const p = usePoll(() => api<{ gateways: Gateway[] }>('GET', '/gateways'), []);
  return (
    <section>
      <h1>Gateways</h1>
      {p.data === undefined ? (
        p.error !== undefined ? (
          <ErrorBox error={p.error} title="Cannot list the gateways" onRetry={p.reload} />
        ) : (
          <Loading what="gateways" />
        )
      ) : p.data.gateways.length === 0 ? (
        <Empty>
          No gateway yet. Create one with <code>ferry gateway create NAME</code>, then start nodes on your
          machines with one of its keys (<code>ferry gateway keys NAME</code>).
        </Empty>
      ) : (
        <div className="table-wrap">
          <table id="gateways">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Version</th>
                <th scope="col">Nodes</th>
                <th scope="col">Dispatcher</th>
              </tr>
            </thead>
            <tbody>
              {p.data.gateways.map((g) => (
                <tr key={g.name} data-gateway={g.name}>
                  <th scope="row">
                    <Link to={paths.gateway(g.name)}>{g.name}</Link>
                  </th>
                  <td>
                    <StatusCell status={g.status} reason={g.statusReason} hint={g.statusHint} />
                  </td>
                  <td>{g.version ?? '-'}</td>
                  <td className="num">
                    {g.nodes}
                    {g.maxNodes !== null && ` of ${g.maxNodes}`}
                  </td>
                  <td>{g.dispatcher ?? '-'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {p.data !== undefined && <Freshness at={p.at} error={p.error} />}
    </section>
  );
}
