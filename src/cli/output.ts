/** Printing: aligned tables for people, JSON for scripts (--json). */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: Record<string, unknown>[], columns: [header: string, key: string][]): void {
  const cells = rows.map((r) => columns.map(([, k]) => fmt(r[k])));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0)));
  const line = (parts: string[]): string =>
    parts
      .map((p, i) => p.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(columns.map(([h]) => h))}\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}

export function printFields(fields: [string, unknown][]): void {
  const w = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) process.stdout.write(`${`${k}:`.padEnd(w + 2)}${fmt(v)}\n`);
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** How long ago an ISO time was, in the largest whole unit: "now", "4 s ago", "12 min ago", "3 h ago". */
export function ago(iso: unknown, now = Date.now()): string {
  const at = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
  if (!Number.isFinite(at)) return '-';
  const s = Math.max(0, Math.floor((now - at) / 1000));
  if (s < 2) return 'now';
  if (s < 120) return `${s} s ago`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 2 * 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}
