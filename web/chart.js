// Line charts in plain SVG, several series overlaid, with axes, a legend and a hover cursor.
// A Chart is built once and updated in place: a poll with unchanged data touches nothing, and
// new data replaces only the plot group, so hover state, the tooltip and any text selection
// elsewhere on the page survive. Optional smoothing (TensorBoard's debiased EMA: the raw line
// stays, faint) and a log y axis. All labels are set with textContent: series names come
// from run folder names.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k.
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) || 10 * mag;
  // The axis spans whole steps, so the first and last ticks sit on its ends.
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; a + i * step <= b + step * 1e-9; i++) { const v = a + i * step; ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v); }
  return { lo: a, hi: b, ticks };
}

// Log-axis ticks for [lo, hi] (both > 0): whole decades, plus 2 and 5 when it spans few.
function logTicks(lo, hi) {
  let a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
  if (a === b) { a -= 1; b += 1; }
  const ticks = [];
  for (let e = a; e <= b; e++) for (const m of b - a <= 2 ? [1, 2, 5] : [1]) {
    const v = m * Math.pow(10, e);
    if (v >= Math.pow(10, a) && v <= Math.pow(10, b)) ticks.push(v);
  }
  return { lo: Math.pow(10, a), hi: Math.pow(10, b), ticks };
}

function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(a >= 1 ? 4 : 3)));  // 0.5 → "0.5", 1234.5 → "1235"
}

// TensorBoard's smoothing: an exponential moving average debiased for its start, so the
// first points are not pulled toward zero. weight 0 returns the values as they are.
function smoothSeries(ys, weight) {
  if (!(weight > 0)) return ys;
  let last = 0, n = 0;
  return ys.map(y => {
    if (!isFinite(y)) return y;
    last = last * weight + (1 - weight) * y;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}

const CW = 600, CH = 250, CL = 58, CR = 12, CT = 10, CB = 34;

class Chart {
  // Builds the fixed parts once: title, svg (axes group, plot group, cursor), legend, tooltip.
  constructor(container, title) {
    this.container = container;
    container.textContent = '';
    const h = document.createElement('h3');
    h.textContent = title;
    this.svg = svgEl('svg', { viewBox: `0 0 ${CW} ${CH}`, role: 'img' });
    this.svg.setAttribute('aria-label', title);
    this.plot = svgEl('g', { class: 'plot' });
    this.cursor = svgEl('line', { y1: CT, y2: CH - CB, class: 'cursor', visibility: 'hidden' });
    this.svg.append(this.plot, this.cursor);
    this.legend = document.createElement('div');
    this.legend.className = 'legend';
    this.tip = document.createElement('div');
    this.tip.className = 'tooltip';
    container.append(h, this.svg, this.legend, this.tip);
    this.signature = null;
    this.legendKey = null;
    this.hoverX = null;  // the mouse position (viewBox x) while hovering, else null
    this.view = null;    // scales and series of the last drawing, read by the hover handler
    this.svg.addEventListener('mousemove', ev => {
      const box = this.svg.getBoundingClientRect();
      this.hoverX = (ev.clientX - box.left) / box.width * CW;
      this.hoverPos = { x: ev.clientX - box.left, y: ev.clientY - box.top, w: box.width };
      this.showTip();
    });
    this.svg.addEventListener('mouseleave', () => {
      this.hoverX = null;
      this.cursor.setAttribute('visibility', 'hidden');
      this.tip.style.display = 'none';
    });
  }

  // spec: {xlabel, empty, logY, smoothing, series: [{label, color, dash, x: [], y: []}]}.
  // Redraws only when the data or the options changed since the last call.
  update(spec) {
    const series = spec.series.filter(s => s.x.length > 0);
    const sig = JSON.stringify([spec.xlabel, spec.empty, !!spec.logY, spec.smoothing || 0,
      series.map(s => [s.label, s.color, s.dash, s.x.length, s.x[0], s.x[s.x.length - 1], s.y[s.y.length - 1]])]);
    if (sig === this.signature) return false;
    this.signature = sig;
    let points = 0;
    series.forEach(s => { points += s.x.length; });
    this.svg.dataset.series = String(series.length);
    this.svg.dataset.points = String(points);
    this.container.dataset.points = String(points);
    this.svg.dataset.scale = spec.logY ? 'log' : 'linear';
    this.plot.textContent = '';
    this.updateLegend(series);
    if (series.length === 0) {
      const t = svgEl('text', { x: CW / 2, y: CH / 2, 'text-anchor': 'middle', class: 'empty' });
      t.textContent = spec.empty || 'no data';
      this.plot.append(t);
      this.view = null;
      this.showTip();
      return true;
    }
    const w = spec.smoothing || 0;
    const drawn = series.map(s => ({ ...s, ys: smoothSeries(s.y, w) }));
    const usable = v => isFinite(v) && (!spec.logY || v > 0);  // a log axis has no place for y ≤ 0
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const s of drawn) for (let i = 0; i < s.x.length; i++) {
      x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
      for (const v of [s.y[i], s.ys[i]]) if (usable(v)) { y0 = Math.min(y0, v); y1 = Math.max(y1, v); }
    }
    if (!isFinite(y0)) { y0 = spec.logY ? 1 : 0; y1 = spec.logY ? 10 : 1; }
    const xt = niceTicks(x0, x1, 6), yt = spec.logY ? logTicks(y0, y1) : niceTicks(y0, y1, 5);
    const fy = spec.logY ? v => Math.log10(v) : v => v;
    const sx = v => CL + (v - xt.lo) / (xt.hi - xt.lo) * (CW - CL - CR);
    const sy = v => CH - CB - (fy(v) - fy(yt.lo)) / (fy(yt.hi) - fy(yt.lo)) * (CH - CT - CB);
    const p = this.plot;
    for (const v of yt.ticks) {
      p.append(svgEl('line', { x1: CL, x2: CW - CR, y1: sy(v), y2: sy(v), class: 'gridline' }));
      const t = svgEl('text', { x: CL - 6, y: sy(v) + 4, 'text-anchor': 'end' });
      t.textContent = fmtNum(v);
      p.append(t);
    }
    for (const v of xt.ticks) {
      const t = svgEl('text', { x: sx(v), y: CH - CB + 16, 'text-anchor': 'middle' });
      t.textContent = fmtNum(v);
      p.append(t);
    }
    p.append(svgEl('line', { x1: CL, x2: CW - CR, y1: CH - CB, y2: CH - CB, class: 'axis' }));
    p.append(svgEl('line', { x1: CL, x2: CL, y1: CT, y2: CH - CB, class: 'axis' }));
    const xl = svgEl('text', { x: (CL + CW - CR) / 2, y: CH - 4, 'text-anchor': 'middle' });
    xl.textContent = spec.xlabel;
    p.append(xl);
    const line = (s, ys, cls) => {
      const pts = [];
      for (let i = 0; i < s.x.length; i++) if (usable(ys[i])) pts.push(`${sx(s.x[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`);
      const l = svgEl('polyline', { points: pts.join(' '), stroke: s.color });
      if (cls) l.setAttribute('class', cls);
      if (s.dash) l.setAttribute('stroke-dasharray', s.dash);
      p.append(l);
    };
    for (const s of drawn) {
      if (w > 0) line(s, s.y, 'raw');  // the unsmoothed values, faint, as TensorBoard shows them
      line(s, s.ys, w > 0 ? 'smoothed' : null);
      if (s.x.length === 1 && usable(s.ys[0])) p.append(svgEl('circle', { cx: sx(s.x[0]), cy: sy(s.ys[0]), r: 3, fill: s.color }));
    }
    this.view = { xt, drawn, smoothed: w > 0, xlabel: spec.xlabel };
    this.showTip();  // a tooltip open during the poll shows the new values in place
    return true;
  }

  updateLegend(series) {
    const key = JSON.stringify(series.map(s => [s.label, s.color]));
    if (key === this.legendKey) return;
    this.legendKey = key;
    this.legend.textContent = '';
    for (const s of series) {
      const item = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = s.color;
      item.append(sw, document.createTextNode(s.label));
      this.legend.append(item);
    }
  }

  // Hover: a vertical cursor and the nearest value of each series (smoothed and raw).
  showTip() {
    const v = this.view;
    if (this.hoverX === null || !v) { this.tip.style.display = 'none'; return; }
    const px = this.hoverX, xt = v.xt;
    const xv = xt.lo + (px - CL) / (CW - CL - CR) * (xt.hi - xt.lo);
    const lines = [`${v.xlabel} ${fmtNum(xv)}`];
    for (const s of v.drawn) {
      let lo = 0, hi = s.x.length - 1;
      while (lo < hi) { const m = (lo + hi) >> 1; if (s.x[m] < xv) lo = m + 1; else hi = m; }
      if (lo > 0 && Math.abs(s.x[lo - 1] - xv) < Math.abs(s.x[lo] - xv)) lo--;
      const val = v.smoothed ? `${fmtNum(s.ys[lo])} (raw ${fmtNum(s.y[lo])})` : fmtNum(s.y[lo]);
      lines.push(`${s.label}: ${val} @ ${fmtNum(s.x[lo])}`);
    }
    this.cursor.setAttribute('x1', px); this.cursor.setAttribute('x2', px);
    this.cursor.setAttribute('visibility', 'visible');
    this.tip.textContent = lines.join('\n');
    this.tip.style.display = 'block';
    const hp = this.hoverPos || { x: 0, y: 0, w: CW };
    this.tip.style.left = Math.min(hp.x + 12, hp.w - 200) + 'px';
    this.tip.style.top = (hp.y + 12) + 'px';
  }
}
