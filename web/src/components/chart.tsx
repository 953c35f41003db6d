/**
 * A line chart in plain SVG (no chart library: a small bundle). Each series is drawn over the same
 * times; a missing figure (null: the node was not reporting) breaks the line instead of bridging
 * the gap with figures nobody measured. The chart has a text summary for screen readers.
 */
import { useEffect, useRef, useState } from 'react';
import { shortTime } from '../format.ts';

export interface Series {
  name: string;
  values: (number | null)[];
  className: string;
}

const H = 160;
const PAD = { left: 64, right: 8, top: 8, bottom: 22 };

export function LineChart({
  title,
  times,
  series,
  format,
  max,
}: {
  title: string;
  times: string[];
  series: Series[];
  format: (v: number) => string;
  max?: number;
}) {
  // Drawn at the figure's own width in pixels, so labels keep their size on any screen.
  const box = useRef<HTMLElement>(null);
  const [W, setW] = useState(600);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = (): void => setW(Math.max(200, Math.floor(el.clientWidth - 16)));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const top = Math.max(max ?? 0, ...all, 1e-9);
  const t0 = times.length > 0 ? Date.parse(times[0] ?? '') : 0;
  const t1 = times.length > 1 ? Date.parse(times[times.length - 1] ?? '') : t0 + 1;
  const x = (i: number): number =>
    PAD.left + ((Date.parse(times[i] ?? '') - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number): number => PAD.top + (1 - v / top) * (H - PAD.top - PAD.bottom);
  const path = (values: (number | null)[]): string => {
    let d = '';
    let pen = false;
    values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };
  const last = (s: Series): string => {
    const v = [...s.values].reverse().find((n) => n !== null);
    return v === undefined || v === null ? '-' : format(v);
  };
  const summary = `${title}: ${series.map((s) => `${s.name} now ${last(s)}`).join(', ')}; peak ${format(Math.max(0, ...all))}`;
  return (
    <figure className="chart" ref={box}>
      <figcaption>
        {title}
        <span className="legend">
          {series.map((s) => (
            <span key={s.name} className={`key ${s.className}`}>
              {s.name}: {last(s)}
            </span>
          ))}
        </span>
      </figcaption>
      {all.length === 0 ? (
        <p className="empty">No figures in this window.</p>
      ) : (
        <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary}>
          <title>{summary}</title>
          <line className="axis" x1={PAD.left} x2={W - PAD.right} y1={y(0)} y2={y(0)} />
          <line className="grid" x1={PAD.left} x2={W - PAD.right} y1={y(top)} y2={y(top)} />
          <text className="tick" x={PAD.left - 4} y={y(top) + 4} textAnchor="end">
            {format(top)}
          </text>
          <text className="tick" x={PAD.left - 4} y={y(0)} textAnchor="end">
            {format(0)}
          </text>
          {times.length > 0 && (
            <>
              <text className="tick" x={PAD.left} y={H - 4}>
                {shortTime(times[0] ?? '')}
              </text>
              <text className="tick" x={W - PAD.right} y={H - 4} textAnchor="end">
                {shortTime(times[times.length - 1] ?? '')}
              </text>
            </>
          )}
          {series.map((s) => (
            <path key={s.name} className={`line ${s.className}`} d={path(s.values)} />
          ))}
        </svg>
      )}
    </figure>
  );
}
