/**
 * The scale advice of a gateway (GET /gateways/NAME/advice): scale out, scale up or nothing to do,
 * each with the figures behind it. A service without the route says so instead.
 */
import { api, enc, isMissingRoute } from '../api.ts';
import { usePoll } from '../poll.ts';
import type { GatewayAdvice } from '../types.ts';
import { ErrorBox, Loading } from './ui.tsx';

export function AdvicePanel({ gateway }: { gateway: string }) {
  const p = usePoll(
    () => api<GatewayAdvice>('GET', `/gateways/${enc(gateway)}/advice?window=1h`),
    [gateway],
    10_000,
  );
  return (
    <section className="panel" aria-labelledby="advice-title" id="advice">
      <h2 id="advice-title">Scale advice (last hour)</h2>
      {p.data === undefined ? (
        p.error !== undefined ? (
          isMissingRoute(p.error) ? (
            <p className="empty">
              Advice is not available: this service does not compute it yet (it has no advice route). The
              nodes table below shows the figures it would use.
            </p>
          ) : (
            <ErrorBox error={p.error} title="Cannot read the advice" onRetry={p.reload} />
          )
        ) : (
          <Loading what="advice" />
        )
      ) : (
        <ul className="advice">
          {p.data.advice.map((a, i) => (
            <li key={i} className={`advice-${a.kind}`}>
              <strong>{a.title}</strong>
              <p>{a.detail}</p>
              {a.figures.length > 0 && (
                <ul className="figures">
                  {a.figures.map((f) => (
                    <li key={f.name}>
                      {f.name}: {f.value}
                      {f.unit ? ` ${f.unit}` : ''}
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
