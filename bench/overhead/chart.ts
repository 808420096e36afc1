// The overhead chart: for each row, one bar per monitored mode, the cost in percent
// against baseline (positive: slower). Plain SVG, so that it renders anywhere.
import type { ModeName } from './monitors.js';
import type { RowResult } from './main.js';

const COLOURS: Record<string, string> = { vigil: '#2b7bb9', 'vigil-all': '#7fb3de', 'vigil-ref': '#5e9c4a', auditd: '#d9822b' };
const escapeXml = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);

export function chart(rows: RowResult[], modes: ModeName[]): string {
  const shown = rows.filter((r) => !r.skipped);
  const values = shown.flatMap((r) => modes.map((m) => r.modes[m]?.overheadPct ?? 0)).concat(shown.map((r) => r.paper.overheadPct));
  const top = Math.max(5, ...values);
  const bottom = Math.min(0, ...values);
  const [width, height, left, right, plotTop, plotBottom] = [Math.max(480, 120 + shown.length * 110), 360, 60, 20, 30, 280];
  const y = (v: number) => plotTop + ((top - v) / (top - bottom)) * (plotBottom - plotTop);
  const group = (width - left - right) / Math.max(1, shown.length);
  const bars = modes.length + 1; // the paper's figure beside ours
  const barW = Math.min(22, (group - 16) / bars);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${left}" y="16" font-size="13">Cost against baseline, % (positive: slower)</text>`,
  ];
  const step = Math.max(1, Math.ceil((top - bottom) / 8));
  for (let v = Math.ceil(bottom / step) * step; v <= top; v += step) {
    out.push(`<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 0 ? '#000' : '#ddd'}"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  shown.forEach((r, i) => {
    const x0 = left + i * group + (group - barW * bars) / 2;
    const series: Array<[string, number, string]> = [['paper', r.paper.overheadPct, '#999'], ...modes.map((m): [string, number, string] => [m, r.modes[m]?.overheadPct ?? 0, COLOURS[m] ?? '#555'])];
    series.forEach(([name, v, colour], j) => {
      const [a, b] = [y(Math.max(0, v)), y(Math.min(0, v))];
      out.push(`<rect x="${(x0 + j * barW).toFixed(1)}" y="${a.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${Math.max(0.5, b - a).toFixed(1)}" fill="${colour}"><title>${escapeXml(`${r.label}, ${name}: ${v.toFixed(2)}%`)}</title></rect>`);
    });
    out.push(`<text x="${(left + i * group + group / 2).toFixed(1)}" y="${plotBottom + 16}" text-anchor="middle">${escapeXml(r.label)}</text>`);
  });
  ['paper', ...modes].forEach((m, j) => {
    out.push(`<rect x="${left + j * 110}" y="${height - 30}" width="12" height="12" fill="${m === 'paper' ? '#999' : COLOURS[m] ?? '#555'}"/>`,
      `<text x="${left + j * 110 + 16}" y="${height - 20}">${escapeXml(m === 'paper' ? 'paper (its monitor)' : m)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
