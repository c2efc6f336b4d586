/**
 * The bench's bar chart, written as SVG by code (no plotting library, no hand edits): one small
 * panel per measurement, Portcullis in blue, the peers in grey, the ceilings dark.
 *
 * @example
 * writeFileSync('docs/benchmarks.svg', renderChart(summary, 'AMD EPYC, 2 cores, Node v20'));
 */
import type { Summary } from './summary.ts';
import type { TargetId } from './targets.ts';

interface Bar {
  label: string;
  value: number;
  role: 'portcullis' | 'peer' | 'ceiling';
}

interface Panel {
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  bars: Bar[];
}

const NAMES: Record<TargetId, string> = {
  portcullis: 'Portcullis',
  'portcullis-info': 'Portcullis (info log)',
  fastapi: 'FastAPI tutorial',
  express: 'Express + jwt',
  'fastify-hello': 'Fastify hello',
};

const COLORS = { portcullis: '#1f6feb', peer: '#9aa4b1', ceiling: '#3b4048' };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function format(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The panels the summary can fill; empty bars are left out. */
function panels(summary: Summary): Panel[] {
  const t = summary.targets;
  const role = (id: TargetId): Bar['role'] => (id === 'portcullis' ? 'portcullis' : id === 'fastify-hello' ? 'ceiling' : 'peer');
  const bars = (pick: (id: TargetId) => number | undefined, ids: TargetId[] = ['portcullis', 'fastapi', 'express', 'fastify-hello']): Bar[] =>
    ids.flatMap((id) => {
      const value = pick(id);
      return value !== undefined && Number.isFinite(value) ? [{ label: NAMES[id], value, role: role(id) }] : [];
    });
  const ceiling: Bar[] = Number.isFinite(summary.ceiling) ? [{ label: 'raw argon2 verify', value: summary.ceiling, role: 'ceiling' }] : [];
  const auth: TargetId[] = ['portcullis', 'fastapi', 'express'];
  return [
    { title: 'A. GET /users/me, requests/s', unit: 'req/s', better: 'higher', bars: bars((id) => t[id]?.a?.requestsPerSecond) },
    { title: 'A. GET /users/me, p99 latency', unit: 'ms', better: 'lower', bars: bars((id) => t[id]?.a?.p99Ms) },
    { title: 'B. POST /token, logins/s (argon2id m=64 MiB, t=3, p=4)', unit: '/s', better: 'higher', bars: [...bars((id) => t[id]?.b?.loginsPerSecond, auth), ...ceiling] },
    { title: 'C. /users/me p99 during a login flood', unit: 'ms', better: 'lower', bars: bars((id) => t[id]?.c?.meP99Ms, auth) },
    { title: 'C. logins/s during the flood', unit: '/s', better: 'higher', bars: [...bars((id) => t[id]?.c?.loginsPerSecond, auth), ...ceiling] },
    { title: 'C. /users/me requests/s during the flood (paced load)', unit: 'req/s', better: 'higher', bars: bars((id) => t[id]?.c?.meRequestsPerSecond, auth) },
    { title: 'D. peak RSS during C (hello-world: whole run)', unit: 'MB', better: 'lower', bars: bars((id) => (t[id] ? t[id].peakRssBytes / 1e6 : undefined)) },
    { title: 'D. cold start (spawn → first 200)', unit: 'ms', better: 'lower', bars: bars((id) => t[id]?.coldStartMs) },
  ].filter((p) => p.bars.length > 0) as Panel[];
}

const PANEL_W = 470;
const LABEL_W = 130;
const BAR_H = 18;
const BAR_GAP = 6;
const PANEL_HEAD = 40;
const PANEL_PAD = 18;

function renderPanel(panel: Panel, x: number, y: number): { svg: string; height: number } {
  const values = panel.bars.map((b) => b.value).filter((v) => v > 0);
  const max = Math.max(...values, 1e-9);
  const min = Math.min(...values, max);
  // Latencies under a flood span three orders of magnitude: a log scale keeps them all visible.
  const log = panel.better === 'lower' && min > 0 && max / min > 50;
  const area = PANEL_W - LABEL_W - 70;
  const width = (v: number): number => {
    if (v <= 0) return 0;
    if (!log) return (v / max) * area;
    const lo = Math.log10(min) - 0.3;
    return Math.max(2, ((Math.log10(v) - lo) / (Math.log10(max) - lo)) * area);
  };
  const parts: string[] = [];
  const subtitle = `${panel.better} is better${log ? ', log scale' : ''}`;
  parts.push(`<text x="${x}" y="${y + 16}" class="t">${escape(panel.title)}</text>`);
  parts.push(`<text x="${x}" y="${y + 31}" class="s">${escape(subtitle)}</text>`);
  panel.bars.forEach((bar, i) => {
    const by = y + PANEL_HEAD + i * (BAR_H + BAR_GAP);
    const w = width(bar.value);
    parts.push(`<text x="${x + LABEL_W - 6}" y="${by + 13}" class="l" text-anchor="end">${escape(bar.label)}</text>`);
    parts.push(`<rect x="${x + LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" rx="2" fill="${COLORS[bar.role]}"/>`);
    parts.push(`<text x="${(x + LABEL_W + w + 5).toFixed(1)}" y="${by + 13}" class="v">${escape(`${format(bar.value)} ${panel.unit}`)}</text>`);
  });
  return { svg: parts.join('\n'), height: PANEL_HEAD + panel.bars.length * (BAR_H + BAR_GAP) + PANEL_PAD };
}

/** The whole chart as an SVG document. */
export function renderChart(summary: Summary, caption: string): string {
  const list = panels(summary);
  const body: string[] = [];
  const top = 56;
  let y = top;
  for (let i = 0; i < list.length; i += 2) {
    const left = renderPanel(list[i] as Panel, 20, y);
    const right = list[i + 1] ? renderPanel(list[i + 1] as Panel, 20 + PANEL_W + 20, y) : { svg: '', height: 0 };
    body.push(left.svg, right.svg);
    y += Math.max(left.height, right.height);
  }
  const width = 2 * PANEL_W + 60;
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif">`,
    '<style>.h{font-size:17px;font-weight:600;fill:#1f2328}.c{font-size:12px;fill:#59636e}.t{font-size:13px;font-weight:600;fill:#1f2328}.s{font-size:11px;fill:#59636e}.l{font-size:12px;fill:#1f2328}.v{font-size:12px;fill:#1f2328}</style>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="26" class="h">Portcullis and its peers — medians of the bench rounds</text>`,
    `<text x="20" y="44" class="c">${escape(caption)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
