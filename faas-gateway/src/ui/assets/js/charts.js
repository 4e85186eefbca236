// SVG charts of a function's last 15 minutes, from /system/metrics/history.

import { h, replace } from './dom.js';

const WINDOW_MS = 15 * 60 * 1000;
const MIN_SPAN_MS = 60 * 1000;
const W = 300;
const H = 120;
const LEFT = 38;
const TOP = 8;
const BOTTOM = 100;
const COLORS = ['#2456c7', '#d9822b'];

function nice(max) {
  if (max <= 1) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (max <= m * step) return m * step;
  return 10 * step;
}

function label(value) {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : String(+value.toFixed(2));
}

function spanLabel(ms) {
  const min = Math.round(ms / 60000);
  return min >= 1 ? `${min} min ago` : `${Math.round(ms / 1000)} s ago`;
}

/** One chart: `lines` of [time, value|null] points over the `span` ms ending at `end`. */
function chart(id, title, unit, lines, end, span) {
  const values = lines.flatMap((l) => l.points.map((p) => p[1]).filter((v) => v !== null));
  const top = nice(Math.max(0, ...values));
  const x = (t) => LEFT + ((t - (end - span)) / span) * (W - LEFT - 4);
  const y = (v) => BOTTOM - (v / top) * (BOTTOM - TOP);
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title },
    h('line', { x1: LEFT, y1: BOTTOM, x2: W - 4, y2: BOTTOM, stroke: '#c3c9d4' }),
    h('line', { x1: LEFT, y1: TOP, x2: LEFT, y2: BOTTOM, stroke: '#c3c9d4' }),
    h('line', { x1: LEFT, y1: TOP, x2: W - 4, y2: TOP, stroke: '#eceff3' }),
    h('text', { x: LEFT - 4, y: TOP + 4, 'text-anchor': 'end', 'font-size': 9, fill: '#5b6474' }, label(top)),
    h('text', { x: LEFT - 4, y: BOTTOM, 'text-anchor': 'end', 'font-size': 9, fill: '#5b6474' }, '0'),
    h('text', { x: LEFT, y: H - 6, 'font-size': 9, fill: '#5b6474' }, spanLabel(span)),
    h('text', { x: W - 4, y: H - 6, 'text-anchor': 'end', 'font-size': 9, fill: '#5b6474' }, 'now'),
    lines.map((line, i) => {
      const pts = line.points.filter((p) => p[1] !== null && p[0] >= end - span);
      return h('g', { class: `series-${i}` },
        h('polyline', {
          fill: 'none',
          stroke: COLORS[i],
          'stroke-width': 1.6,
          points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
        }),
        pts.filter((p) => p[1]).map(([t, v]) => h('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2, fill: COLORS[i] })));
    }));
  const first = lines[0].points;
  svg.setAttribute('data-points', String(first.length));
  svg.setAttribute('data-nonzero', String(first.filter((p) => p[1]).length));
  if (first.length) svg.setAttribute('data-last', String(first[first.length - 1][1]));
  return h('div', { class: 'chart', id },
    h('h2', {}, title, h('span', { class: 'muted' }, ` (${unit})`)),
    svg,
    h('div', { class: 'legend' }, lines.map((l, i) => h('span', { class: i ? 'swatch-b' : 'swatch-a' }, `■ ${l.label}`))));
}

/** Draws `series` (the history route's answer) into `container`. */
export function drawCharts(container, series) {
  const samples = series.samples || [];
  const interval = series.intervalSeconds || 5;
  const end = samples.length ? Math.max(samples[samples.length - 1].time, Date.now()) : Date.now();
  const pick = (f) => samples.map((s) => [s.time, f(s)]);
  // The last 15 minutes, or since the first sample when that is more recent.
  const first = samples.length ? samples[0].time : end;
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, end - first));
  replace(container,
    chart('chart-calls', 'Calls', 'per second', [{ label: 'calls/s', points: pick((s) => s.calls / interval) }], end, span),
    chart('chart-errors', 'Errors', 'per second', [{ label: 'errors/s', points: pick((s) => s.errors / interval) }], end, span),
    chart('chart-latency', 'Latency', 'ms', [
      { label: 'p50', points: pick((s) => s.p50Ms) },
      { label: 'p99', points: pick((s) => s.p99Ms) },
    ], end, span),
    chart('chart-replicas', 'Replicas', 'count', [
      { label: 'desired', points: pick((s) => s.replicasDesired) },
      { label: 'ready', points: pick((s) => s.replicasReady) },
    ], end, span),
    chart('chart-cold', 'Cold starts', 'per 5 s', [{ label: 'cold starts', points: pick((s) => s.coldStarts) }], end, span));
}
