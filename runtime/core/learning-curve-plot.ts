import type { MetricsRecord } from './metrics-log';

export interface CurveSeries {
  label: string;
  color: string;
  points: Array<[number, number]>;
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 50 };

const PALETTE = ['#d1495b', '#2e86ab', '#edae49', '#66a182', '#8d6a9f', '#00798c', '#e07a5f', '#3d405b'];

/**
 * The learning curve of a run as a self-contained SVG: mean training return per log interval
 * and evaluation return against the run's steps (`env_steps`, or `grad_steps` for offline
 * runs), plus win/success rate on a second axis when the task reports one; multi-task runs get
 * one evaluation curve per task. SVG needs no plotting dependency and opens in any browser.
 */
export function learningCurveSvg(records: readonly MetricsRecord[], title: string): string {
  const xKey = records.some((r) => typeof r.grad_steps === 'number' && r.env_steps === undefined) ? 'grad_steps' : 'env_steps';
  const numeric = (r: MetricsRecord, key: string): number | undefined => {
    const v = r[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };
  const series = (kind: 'train' | 'eval', key: string, task?: string): Array<[number, number]> =>
    records.filter((r) => r.kind === kind && (task === undefined || r.task === task)).flatMap((r) => {
      const x = numeric(r, xKey);
      const v = numeric(r, key);
      return x === undefined || v === undefined ? [] : [[x, v] as [number, number]];
    });
  const tasks = [...new Set(records.map((r) => r.task).filter((t): t is string => typeof t === 'string'))];
  if (tasks.length > 0) {
    const perTask: CurveSeries[] = tasks.map((task, i) => ({ label: `eval return: ${task}`, color: PALETTE[i % PALETTE.length], points: series('eval', 'return_mean', task) }));
    return renderSvg(title, perTask, undefined, xKey === 'grad_steps' ? 'gradient steps' : 'env steps');
  }
  const returns: CurveSeries[] = [
    { label: 'train return (mean per interval)', color: '#7aa6d6', points: series('train', 'return_mean') },
    { label: 'eval return (greedy)', color: '#d1495b', points: series('eval', 'return_mean') },
  ];
  const winRate = series('eval', 'win_rate');
  return renderSvg(title, returns, winRate.length > 0 ? { label: 'eval win/success rate', color: '#2e933c', points: winRate } : undefined, xKey === 'grad_steps' ? 'gradient steps' : 'env steps');
}

function renderSvg(title: string, left: CurveSeries[], right: CurveSeries | undefined, xLabel: string): string {
  const all = left.flatMap((s) => s.points);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const xMax = Math.max(1, ...all.map(([x]) => x), ...(right?.points.map(([x]) => x) ?? []));
  let yMin = Math.min(0, ...all.map(([, y]) => y));
  let yMax = Math.max(...all.map(([, y]) => y), yMin + 1e-9);
  if (all.length === 0) [yMin, yMax] = [0, 1];
  const pad = (yMax - yMin) * 0.05;
  yMin -= pad;
  yMax += pad;
  const sx = (x: number) => MARGIN.left + (x / xMax) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;
  const sr = (y: number) => MARGIN.top + plotH - y * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`);
  // Axes, ticks and grid.
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  for (const t of ticks(0, xMax)) {
    parts.push(`<line x1="${sx(t)}" y1="${MARGIN.top + plotH}" x2="${sx(t)}" y2="${MARGIN.top + plotH + 5}" stroke="#444"/>`);
    parts.push(`<text x="${sx(t)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${formatNumber(t)}</text>`);
  }
  for (const t of ticks(yMin, yMax)) {
    parts.push(`<line x1="${MARGIN.left}" y1="${sy(t)}" x2="${MARGIN.left + plotW}" y2="${sy(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${sy(t) + 4}" text-anchor="end">${formatNumber(t)}</text>`);
  }
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">${xLabel}</text>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">team return</text>`);
  if (right) {
    for (const t of [0, 0.5, 1]) parts.push(`<text x="${MARGIN.left + plotW + 4}" y="${sr(t) + 4}" fill="${right.color}">${t}</text>`);
  }
  const drawn = right ? [...left, right] : left;
  drawn.forEach((s, i) => {
    const scaleY = s === right ? sr : sy;
    if (s.points.length > 0) {
      const d = s.points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${scaleY(y).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      if (s.points.length < 60) for (const [x, y] of s.points) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${scaleY(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    }
    const ly = MARGIN.top + 14 + i * 16;
    parts.push(`<line x1="${MARGIN.left + 10}" y1="${ly - 4}" x2="${MARGIN.left + 30}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<text x="${MARGIN.left + 36}" y="${ly}">${escapeXml(s.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function formatNumber(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e6) return `${Number((x / 1e6).toPrecision(3))}M`;
  if (a >= 1e3) return `${Number((x / 1e3).toPrecision(3))}k`;
  return `${Number(x.toPrecision(3))}`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
