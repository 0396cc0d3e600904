// A line chart of one metric over time, drawn as SVG: grid lines with
// round values, a time axis from the oldest to the newest point shown, the
// line, the area under it and a dot on the newest point. No library.
// The SVG is an image for assistive technology (role="img") with a label
// that says what it shows; the page keeps a table of the points beside it.

const NS = 'http://www.w3.org/2000/svg';
const W = 400; // about the width of a card: the text keeps its size
const H = 170;
const PAD = { left: 44, right: 10, top: 10, bottom: 24 };
const MIN_SPAN_MS = 10_000; // a lone point or a burst still gets a readable axis

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function svgEl(name, attrs = {}) {
  const el = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// the presentation attribute, not a style: the page's CSP allows no inline style
function show(el, on) {
  if (on) el.removeAttribute('display');
  else el.setAttribute('display', 'none');
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k. */
export function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 1 ? Math.abs(lo) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return { ticks, step };
}

function formatter(step) {
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step))));
  return new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * Creates an empty chart.
 * @returns {{ svg: SVGSVGElement, draw: (series: {t: number, v: number}[], metric: string) => void }}
 *   draw() takes the points in time order (t in ms) and redraws everything.
 */
export function createChart() {
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'data-points': 0 });
  const grid = svgEl('g', { class: 'grid', 'aria-hidden': 'true' });
  const xAxis = svgEl('g', { class: 'x-axis', 'aria-hidden': 'true' });
  const area = svgEl('path', { class: 'area' });
  const line = svgEl('path', { class: 'line' });
  const dot = svgEl('circle', { class: 'dot', r: 4 });
  const empty = svgEl('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' });
  empty.textContent = 'Waiting for telemetry…';
  svg.append(grid, xAxis, area, line, dot, empty);

  function draw(series, metric) {
    svg.setAttribute('data-points', series.length);
    grid.replaceChildren();
    xAxis.replaceChildren();
    const hasData = series.length > 0;
    for (const el of [line, area, dot]) show(el, hasData);
    show(empty, !hasData);
    if (!hasData) {
      svg.setAttribute('aria-label', `${metric || 'Telemetry'}: no points yet`);
      return;
    }

    let lo = Infinity;
    let hi = -Infinity;
    for (const p of series) {
      lo = Math.min(lo, p.v);
      hi = Math.max(hi, p.v);
    }
    const { ticks, step } = niceTicks(lo, hi);
    const yMin = ticks[0];
    const yMax = ticks[ticks.length - 1];
    const tEnd = series[series.length - 1].t;
    const tStart = Math.min(series[0].t, tEnd - MIN_SPAN_MS);
    const x = (t) => PAD.left + ((t - tStart) / (tEnd - tStart)) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - ((v - yMin) / (yMax - yMin)) * (H - PAD.top - PAD.bottom);

    const fmt = formatter(step);
    for (const v of ticks) {
      const yy = y(v).toFixed(1);
      grid.append(svgEl('line', { x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy }));
      const label = svgEl('text', { x: PAD.left - 6, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle' });
      label.textContent = fmt.format(v);
      grid.append(label);
    }
    for (const [t, anchor] of [[tStart, 'start'], [(tStart + tEnd) / 2, 'middle'], [tEnd, 'end']]) {
      const label = svgEl('text', { x: x(t).toFixed(1), y: H - 8, 'text-anchor': anchor });
      label.textContent = timeFormat.format(t);
      xAxis.append(label);
    }

    const pts = series.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
    line.setAttribute('d', `M${pts.join('L')}`);
    const base = (H - PAD.bottom).toFixed(1);
    area.setAttribute('d', `M${x(series[0].t).toFixed(1)},${base}L${pts.join('L')}L${x(tEnd).toFixed(1)},${base}Z`);
    dot.setAttribute('cx', x(tEnd).toFixed(1));
    dot.setAttribute('cy', y(series[series.length - 1].v).toFixed(1));

    const latest = series[series.length - 1].v;
    svg.setAttribute(
      'aria-label',
      `${metric}: ${series.length} point${series.length === 1 ? '' : 's'} from ${timeFormat.format(series[0].t)} ` +
        `to ${timeFormat.format(tEnd)}, latest ${latest}, lowest ${lo}, highest ${hi}`,
    );
  }

  draw([], '');
  return { svg, draw };
}
