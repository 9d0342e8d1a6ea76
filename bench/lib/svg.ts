import type { Summary } from './stats.ts';

/** A horizontal bar chart with min-max whiskers, as hand-written SVG. */
export type Bar = { label: string; s: Summary | null; group: string };

const COLORS: Record<string, string> = { isogate: '#2f6fdf', peer: '#8a8f98', ceiling: '#3aa35b', multi: '#b06ad9', noisy: '#d9822b' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function barChart(title: string, unit: string, bars: readonly Bar[], note = ''): string {
  const rowH = 26;
  const left = 190;
  const width = 820;
  const plotW = width - left - 110;
  const top = 48;
  const height = top + bars.length * rowH + 46;
  const max = niceMax(Math.max(1e-9, ...bars.map((b) => b.s?.max ?? 0)));
  const x = (v: number) => left + (v / max) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system,Segoe UI,Helvetica,Arial,sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${left}" y="20" font-size="15" font-weight="600">${esc(title)}</text>`);
  if (note !== '') out.push(`<text x="${left}" y="37" fill="#666">${esc(note)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const gx = x(v);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + bars.length * rowH}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${gx}" y="${top + bars.length * rowH + 16}" text-anchor="middle" fill="#555">${esc(short(v))}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${top + bars.length * rowH + 34}" text-anchor="middle" fill="#333">${esc(unit)} (bar: median of rounds, whisker: min–max)</text>`);
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    out.push(`<text x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(b.label)}</text>`);
    if (b.s === null) {
      out.push(`<text x="${left + 4}" y="${y + rowH / 2 + 4}" fill="#999">skipped</text>`);
      return;
    }
    const color = COLORS[b.group] ?? '#2f6fdf';
    out.push(`<rect x="${left}" y="${y + 5}" width="${Math.max(1, x(b.s.median) - left).toFixed(1)}" height="${rowH - 10}" fill="${color}" rx="2"/>`);
    const y0 = y + rowH / 2;
    out.push(`<g stroke="#222" stroke-width="1.2"><line x1="${x(b.s.min).toFixed(1)}" y1="${y0}" x2="${x(b.s.max).toFixed(1)}" y2="${y0}"/>` +
      `<line x1="${x(b.s.min).toFixed(1)}" y1="${y0 - 5}" x2="${x(b.s.min).toFixed(1)}" y2="${y0 + 5}"/>` +
      `<line x1="${x(b.s.max).toFixed(1)}" y1="${y0 - 5}" x2="${x(b.s.max).toFixed(1)}" y2="${y0 + 5}"/></g>`);
    out.push(`<text x="${(x(b.s.max) + 6).toFixed(1)}" y="${y0 + 4}" fill="#333">${esc(short(b.s.median))}</text>`);
  });
  const legend = [...new Set(bars.map((b) => b.group))];
  legend.forEach((g, i) => {
    const lx = width - 100;
    const ly = 12 + i * 15;
    out.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${COLORS[g] ?? '#2f6fdf'}"/><text x="${lx + 14}" y="${ly + 9}" fill="#333">${esc(g)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function short(v: number): string {
  if (v >= 10_000) return `${(v / 1000).toFixed(v >= 100_000 ? 0 : 1)}k`;
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
