// Line charts in plain SVG, several series overlaid, with axes, a legend and a hover cursor.
// All labels are set with textContent: series names come from run folder names.
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

function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(a >= 1 ? 4 : 3)));  // 0.5 → "0.5", 1234.5 → "1235"
}

// spec: {title, xlabel, series: [{label, color, dash, x: [], y: []}]}
function drawChart(container, spec) {
  const W = 600, H = 250, L = 58, R = 12, T = 10, B = 34;
  container.textContent = '';
  const title = document.createElement('h3');
  title.textContent = spec.title;
  container.append(title);
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
  svg.setAttribute('aria-label', spec.title);
  container.append(svg);
  const series = spec.series.filter(s => s.x.length > 0);
  let points = 0;
  series.forEach(s => { points += s.x.length; });
  svg.dataset.series = String(series.length);
  svg.dataset.points = String(points);
  container.dataset.points = String(points);
  if (series.length === 0) {
    const t = svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' });
    t.textContent = spec.empty || 'no data';
    svg.append(t);
    return;
  }
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) for (let i = 0; i < s.x.length; i++) {
    x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
    y0 = Math.min(y0, s.y[i]); y1 = Math.max(y1, s.y[i]);
  }
  const xt = niceTicks(x0, x1, 6), yt = niceTicks(y0, y1, 5);
  const sx = v => L + (v - xt.lo) / (xt.hi - xt.lo) * (W - L - R);
  const sy = v => H - B - (v - yt.lo) / (yt.hi - yt.lo) * (H - T - B);
  for (const v of yt.ticks) {
    svg.append(svgEl('line', { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: 'gridline' }));
    const t = svgEl('text', { x: L - 6, y: sy(v) + 4, 'text-anchor': 'end' });
    t.textContent = fmtNum(v);
    svg.append(t);
  }
  for (const v of xt.ticks) {
    const t = svgEl('text', { x: sx(v), y: H - B + 16, 'text-anchor': 'middle' });
    t.textContent = fmtNum(v);
    svg.append(t);
  }
  svg.append(svgEl('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  svg.append(svgEl('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }));
  const xl = svgEl('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' });
  xl.textContent = spec.xlabel;
  svg.append(xl);
  for (const s of series) {
    const pts = s.x.map((x, i) => `${sx(x).toFixed(1)},${sy(s.y[i]).toFixed(1)}`).join(' ');
    const line = svgEl('polyline', { points: pts, stroke: s.color });
    if (s.dash) line.setAttribute('stroke-dasharray', s.dash);
    svg.append(line);
    if (s.x.length === 1) svg.append(svgEl('circle', { cx: sx(s.x[0]), cy: sy(s.y[0]), r: 3, fill: s.color }));
  }
  const legend = document.createElement('div');
  legend.className = 'legend';
  for (const s of series) {
    const item = document.createElement('span');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = s.color;
    item.append(sw, document.createTextNode(s.label));
    legend.append(item);
  }
  container.append(legend);
  // Hover: a vertical cursor and the nearest value of each series.
  const cursor = svgEl('line', { y1: T, y2: H - B, class: 'cursor', visibility: 'hidden' });
  svg.append(cursor);
  const tip = document.createElement('div');
  tip.className = 'tooltip';
  container.append(tip);
  svg.addEventListener('mousemove', ev => {
    const box = svg.getBoundingClientRect();
    const px = (ev.clientX - box.left) / box.width * W;
    const xv = xt.lo + (px - L) / (W - L - R) * (xt.hi - xt.lo);
    const lines = [`${spec.xlabel} ${fmtNum(xv)}`];
    for (const s of series) {
      let lo = 0, hi = s.x.length - 1;
      while (lo < hi) { const m = (lo + hi) >> 1; if (s.x[m] < xv) lo = m + 1; else hi = m; }
      if (lo > 0 && Math.abs(s.x[lo - 1] - xv) < Math.abs(s.x[lo] - xv)) lo--;
      lines.push(`${s.label}: ${fmtNum(s.y[lo])} @ ${fmtNum(s.x[lo])}`);
    }
    cursor.setAttribute('x1', px); cursor.setAttribute('x2', px);
    cursor.setAttribute('visibility', 'visible');
    tip.textContent = lines.join('\n');
    tip.style.display = 'block';
    tip.style.left = Math.min(ev.clientX - box.left + 12, box.width - 200) + 'px';
    tip.style.top = (ev.clientY - box.top + 12) + 'px';
  });
  svg.addEventListener('mouseleave', () => { cursor.setAttribute('visibility', 'hidden'); tip.style.display = 'none'; });
}
