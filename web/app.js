// The dashboard page: polls the JSON API of `lorafit dashboard` and draws the runs table,
// charts, settings difference, before/after answers and environment.
// Every piece of run data (prompts, answers, paths, settings) reaches the page through
// textContent / createTextNode, never innerHTML: model output is shown as text.
'use strict';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];
const POLL_MS = Number(new URLSearchParams(location.search).get('interval') || 2000);
const GB = 1e9;

// Charts: metric keys (metrics.jsonl, x = step or time) or system keys (system.jsonl, x = time).
const CHARTS = [
  { id: 'loss', title: 'Training loss', metrics: [/^loss$/] },
  { id: 'eval_loss', title: 'Eval loss', metrics: [/^eval_loss$/] },
  { id: 'eval_bench', title: 'Benchmark scores (train --eval_data)', metrics: [/^eval_mcq_accuracy$/, /^eval_qa_(rouge_1|rouge_2|rouge_l|bleu_4)$/], empty: 'no eval_data scores' },
  { id: 'grad_norm', title: 'Gradient norm', metrics: [/^grad_norm$/] },
  { id: 'learning_rate', title: 'Learning rate', metrics: [/^learning_rate$/] },
  { id: 'tokens_per_s', title: 'Tokens / s', metrics: [/^tokens_per_s$/] },
  { id: 'memory', title: 'Memory (GB): process RSS, GPU', system: [/^rss_bytes$/, /^gpu\d+_mem_used_bytes$/], scalePattern: [[/_bytes$/, 1 / GB]] },
  { id: 'cpu', title: 'CPU % of the machine: all processes, this process', system: [/^cpu_percent$/, /^process_cpu_percent$/], perCore: /^process_cpu_percent$/ },
  { id: 'gpu_util', title: 'GPU utilisation %', system: [/^gpu\d+_util_percent$/], empty: 'no GPU readings' },
  { id: 'gpu_power', title: 'GPU power (W) and temperature (°C)', system: [/^gpu\d+_power_w$/, /^gpu\d+_temp_c$/], empty: 'no GPU readings' },
];

const state = { runs: [], selected: [], data: {}, xmode: 'step', allConfig: false, focusSamples: null, focusEnv: null, pollOk: false,
  smoothing: 0, logY: false, compare: false, compareTag: 'last' };

function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

function runColor(id) { return COLORS[Math.max(0, state.runs.findIndex(r => r.id === id)) % COLORS.length]; }
function q(id) { return encodeURIComponent(id); }

function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  return h ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(sec).padStart(2, '0')}s`;
}
function show(v) { return v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v); }
function baseName(p) { return typeof p === 'string' ? p.replace(/\/+$/, '').split('/').pop() : show(p); }

// ---- data ---------------------------------------------------------------------------

async function refreshRun(id, full) {
  const d = state.data[id] || (state.data[id] = {});
  const jobs = [
    getJSON(`api/metrics?id=${q(id)}&max_points=1200`).then(v => { d.metrics = v; }),
    getJSON(`api/system?id=${q(id)}&max_points=600`).then(v => { d.system = v; }),
    getJSON(`api/samples?id=${q(id)}`).then(v => { d.samples = v; }),
  ];
  if (full || !d.detail) jobs.push(getJSON(`api/run?id=${q(id)}`).then(v => { d.detail = v; }));
  await Promise.all(jobs);
}

let pollTimer = null, inflight = false, again = false;
async function poll() {
  clearTimeout(pollTimer);
  if (inflight) { again = true; return; }  // one request loop at a time
  inflight = true;
  try {
    const r = await getJSON('api/runs');
    const known = new Set(state.runs.map(x => x.id));
    const firstLoad = state.runs.length === 0;
    state.runs = r.runs;
    document.getElementById('root').textContent = r.root;
    if (firstLoad) state.selected = r.runs.slice(0, 4).map(x => x.id);
    state.selected = state.selected.filter(id => r.runs.some(x => x.id === id));
    for (const run of r.runs) if (!known.has(run.id) && !firstLoad && state.selected.length === 0) state.selected.push(run.id);
    const ids = new Set([...state.selected, state.focusSamples, state.focusEnv].filter(Boolean));
    // Finished runs are fetched once; running (or unloaded) ones at every poll.
    await Promise.all([...ids].map(id => {
      const run = r.runs.find(x => x.id === id);
      const d = state.data[id];
      if (!run) return null;
      if (d && d.metrics && run.status !== 'running' && d.status === run.status) return null;
      return refreshRun(id, !d || d.status !== run.status).then(() => { state.data[id].status = run.status; });
    }));
    state.pollOk = true;
    render();
    const live = document.getElementById('live');
    live.textContent = `updated ${new Date().toLocaleTimeString()}`;
    live.classList.toggle('on', r.runs.some(x => x.status === 'running'));
  } catch (e) {
    const live = document.getElementById('live');
    live.textContent = `cannot reach the dashboard server: ${e.message}`;
    live.classList.remove('on');
  } finally {
    inflight = false;
    pollTimer = setTimeout(poll, again ? 0 : POLL_MS);
    again = false;
  }
}

// ---- rendering ----------------------------------------------------------------------
// Every part updates in place: a node is rebuilt only when what it shows changed, so text
// selection, scroll positions, open tooltips and focus survive a poll.

function render() {
  renderWarnings();
  renderRuns();
  renderCharts();
  renderConfig();
  renderFocusSelect('focus-samples', 'focusSamples');
  renderFocusSelect('focus-env', 'focusEnv');
  renderCompareTags();
  renderSamples();
  renderEnv();
}

// Sets a node's text only when it differs (an unchanged text node keeps a selection in it).
function setText(node, text) {
  const t = String(text);
  if (node.textContent !== t) node.textContent = t;
}

// Rebuilds `box` with build() only when key (a JSON-able value) changed since the last time.
function rebuildIfChanged(box, key, build) {
  const sig = JSON.stringify(key);
  if (box.dataset.sig === sig) return false;
  box.dataset.sig = sig;
  box.textContent = '';
  build();
  return true;
}

function renderWarnings() {
  const box = document.getElementById('warnings');
  const groups = [];
  for (const run of state.runs) {
    const d = state.data[run.id] || {};
    const all = new Set([...(run.warnings || []), ...((d.metrics || {}).warnings || []), ...((d.system || {}).warnings || []),
      ...((d.samples || {}).warnings || []), ...((d.detail || {}).warnings || [])]);
    if (all.size) groups.push([run.id, [...all]]);
  }
  rebuildIfChanged(box, groups, () => {
    for (const [id, msgs] of groups) {
      const w = el('div', 'warning', el('strong', null, `${id}: `));
      w.dataset.run = id;
      const ul = el('ul');
      for (const msg of msgs) ul.append(el('li', null, msg));
      w.append(ul);
      box.append(w);
    }
  });
}

// One row per run, kept by run id: cells are created once and their text updated.
function runRow(run) {
  const box = el('input');
  box.type = 'checkbox';
  box.addEventListener('change', () => {
    state.selected = box.checked ? [...state.selected, run.id] : state.selected.filter(x => x !== run.id);
    poll.now();
  });
  const cells = [];
  for (let i = 0; i < 11; i++) cells.push(el('td', i >= 4 ? 'num' : null));
  const tr = el('tr', null, el('td', null, box), ...cells);
  tr.dataset.run = run.id;
  const name = cells[0];
  name.append(el('span', 'swatch'), document.createTextNode(''));
  cells[2].className = 'mono';
  cells[3].className = 'mono';
  tr._box = box;
  tr._cells = cells;
  return tr;
}

function renderRuns() {
  const tb = document.querySelector('#runs tbody');
  const rows = tb._rows || (tb._rows = new Map());
  const empty = tb.querySelector('tr.empty');
  if (state.runs.length === 0 && !empty) {
    const td = el('td', 'muted', 'No runs in this folder yet. Start one with `lorafit train --output_dir <this folder>/<name>`.');
    td.colSpan = 12;
    tb.append(el('tr', 'empty', td));
  } else if (state.runs.length && empty) {
    empty.remove();
  }
  const ids = new Set(state.runs.map(r => r.id));
  for (const [id, tr] of rows) if (!ids.has(id)) { tr.remove(); rows.delete(id); }
  let prev = null;
  for (const run of state.runs) {
    let tr = rows.get(run.id);
    if (!tr) { tr = runRow(run); rows.set(run.id, tr); }
    // Keep the API's order, moving a row only when it is out of place.
    const want = prev ? prev.nextSibling : tb.firstChild;
    if (want !== tr) tb.insertBefore(tr, want);
    prev = tr;
    const hp = run.hyperparameters || {};
    const sel = state.selected.includes(run.id);
    if (tr._box.checked !== sel) tr._box.checked = sel;
    tr.classList.toggle('selected', sel);
    const c = tr._cells;
    c[0].firstChild.style.background = runColor(run.id);
    setText(c[0].lastChild, run.id);
    const status = run.stale ? 'stale' : run.status;
    const badgeText = run.stale ? 'running? (stale)' : run.status;
    rebuildIfChanged(c[1], [status, badgeText, run.error || null], () => {
      c[1].append(el('span', `badge ${status}`, badgeText));
      if (run.error) c[1].append(el('div', 'error', run.error));
    });
    setText(c[2], baseName(run.model));
    c[2].title = show(run.model);
    setText(c[3], baseName(run.data));
    c[3].title = show(run.data);
    setText(c[4], show(hp.learning_rate));
    setText(c[5], `${show(hp.lora_r)} / ${show(hp.lora_alpha)}`);
    setText(c[6], `${show(hp.per_device_train_batch_size)} × ${show(hp.gradient_accumulation_steps)}`);
    setText(c[7], `${show(hp.num_train_epochs)} / ${show(hp.max_steps)}`);
    setText(c[8], run.total_steps ? `${show(run.last_step)} / ${run.total_steps}` : show(run.last_step));
    setText(c[9], run.final_loss === null || run.final_loss === undefined ? '–' : fmtNum(run.final_loss));
    setText(c[10], fmtDuration(run.duration_s));
  }
}

// CPU readings on one scale, percent of the whole machine: cpu_percent already is; the
// process's share (100 = one core, as psutil and top count it) is divided by the core count
// that env.json records.
function cpuCores(id) {
  const cpu = (((state.data[id] || {}).detail || {}).env || {}).cpu || {};
  return Number(cpu.cores) > 0 ? Number(cpu.cores) : null;
}

// The series of one chart for every selected run.
function chartSeries(spec) {
  const out = [];
  for (const id of state.selected) {
    const d = state.data[id];
    if (!d) continue;
    const run = state.runs.find(r => r.id === id) || {};
    const t0 = run.start_time || null;
    const dashes = ['', '5 3', '2 2', '8 3 2 3'];
    let k = 0;
    const add = (src, patterns, forceTime) => {
      const ser = ((d[src] || {}).series) || {};
      for (const [key, s] of Object.entries(ser)) {
        if (!patterns.some(p => p.test(key))) continue;
        let scale = 1, label = `${id} · ${key}`;
        for (const [p, f] of spec.scalePattern || []) if (p.test(key)) scale = f;
        if (spec.perCore && spec.perCore.test(key)) {
          const n = cpuCores(id);
          if (n) { scale = 1 / n; label = `${id} · ${key} ÷ ${n} cores`; }
        }
        const useTime = forceTime || state.xmode === 'time';
        const origin = t0 || (s.t.find(v => v !== null) ?? 0);
        const xs = [], ys = [];
        for (let i = 0; i < s.y.length; i++) {
          const x = useTime ? (s.t[i] === null ? null : (s.t[i] - origin) / 60) : s.x[i];
          if (x === null) continue;
          xs.push(x); ys.push(s.y[i] * scale);
        }
        out.push({ label, color: runColor(id), dash: dashes[k++ % dashes.length], x: xs, y: ys });
      }
    };
    if (spec.metrics) add('metrics', spec.metrics, false);
    if (spec.system) add('system', spec.system, true);
  }
  return out;
}

const charts = new Map();  // chart id → Chart

function renderCharts() {
  const box = document.getElementById('charts');
  for (const spec of CHARTS) {
    let c = charts.get(spec.id);
    if (!c) {
      const div = el('div', 'chart');
      div.id = `chart-${spec.id}`;
      box.append(div);
      c = new Chart(div, spec.title);
      charts.set(spec.id, c);
    }
    // System readings have no step: their x axis is always minutes since the run started.
    const xlabel = !spec.metrics || state.xmode === 'time' ? 'minutes' : 'step';
    c.update({ series: chartSeries(spec), empty: spec.empty, xlabel, logY: state.logY,
               smoothing: spec.system ? 0 : state.smoothing });
  }
}

function flatten(obj, prefix, out) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out); else out[key] = v;
  }
  return out;
}

function renderConfig() {
  const table = document.getElementById('config');
  const ids = state.selected.filter(id => state.data[id] && state.data[id].detail);
  const flat = ids.map(id => flatten(state.data[id].detail.config, '', {}));
  rebuildIfChanged(table, [ids, flat, state.allConfig, ids.map(runColor)], () => {
    if (ids.length === 0) { table.append(el('tr', null, el('td', 'muted', 'Select a run to see its settings.'))); return; }
    const keys = [...new Set(flat.flatMap(f => Object.keys(f)))].sort();
    const head = el('tr', null, el('th', null, 'setting'));
    for (const id of ids) head.append(el('th', null, el('span', 'swatch'), id));
    head.querySelectorAll('.swatch').forEach((s, i) => { s.style.background = runColor(ids[i]); });
    table.append(head);
    table.className = 'diff';
    let shown = 0;
    for (const k of keys) {
      const vals = flat.map(f => JSON.stringify(f[k]));
      const differs = vals.some(v => v !== vals[0]);
      if (ids.length > 1 && !differs && !state.allConfig) continue;
      const tr = el('tr', null, el('td', 'mono', k));
      for (const f of flat) tr.append(el('td', differs ? 'mono changed' : 'mono', show(f[k])));
      table.append(tr);
      shown++;
    }
    if (shown === 0) table.append(el('tr', null, el('td', 'muted', 'The selected runs have the same settings.')));
  });
}

function renderFocusSelect(selectId, field) {
  const s = document.getElementById(selectId);
  const ids = state.runs.map(r => r.id);
  if (!state[field] || !ids.includes(state[field])) state[field] = state.selected[0] || ids[0] || null;
  if (s.options.length !== ids.length || [...s.options].some((o, i) => o.value !== ids[i])) {
    s.textContent = '';
    for (const id of ids) { const o = el('option', null, id); o.value = id; s.append(o); }
  }
  if (s.value !== (state[field] || '')) s.value = state[field] || '';
}

function sampleRows(id) {
  const d = state.data[id];
  return d && d.samples ? d.samples.samples : [];
}
const tagOf = a => a.tag ?? a.when;  // "when": the trainer's field name before RunStore

// The tags the compared runs share ("before", "epoch 1", ...), offered beside "last".
function renderCompareTags() {
  const s = document.getElementById('compare-tag');
  const tags = [...new Set(state.selected.flatMap(id => sampleRows(id).map(tagOf)).filter(t => t !== undefined))];
  const want = ['last', ...tags];
  if (s.options.length !== want.length || [...s.options].some((o, i) => o.value !== want[i])) {
    s.textContent = '';
    for (const t of want) { const o = el('option', null, t === 'last' ? 'last answer' : t); o.value = t; s.append(o); }
  }
  if (!want.includes(state.compareTag)) state.compareTag = 'last';
  if (s.value !== state.compareTag) s.value = state.compareTag;
  s.disabled = !state.compare;
}

// Cards by prompt index, answers by (run, step, tag): created once, text updated in place.
function renderSamples() {
  const box = document.getElementById('samples');
  const groups = new Map();  // prompt index → {prompt, truth, answers: [{key, head, text}]}
  const group = r => {
    const key = String(r.index ?? r.prompt);
    if (!groups.has(key)) groups.set(key, { prompt: r.prompt, truth: r.ground_truth ?? r.reference, answers: [] });
    return groups.get(key);
  };
  if (state.compare) {
    // One column per selected run: its last answer, or its answer with the chosen tag.
    for (const id of state.selected) {
      const best = new Map();
      for (const r of sampleRows(id)) {
        if (state.compareTag !== 'last' && tagOf(r) !== state.compareTag) continue;
        const k = String(r.index ?? r.prompt);
        if (!best.has(k) || (r.step ?? 0) >= (best.get(k).step ?? 0)) best.set(k, r);
      }
      for (const r of best.values())
        group(r).answers.push({ key: `${id}`, run: id, head: `${id} · ${show(tagOf(r))} (step ${show(r.step)})`, text: show(r.answer), tag: show(tagOf(r)) });
    }
  } else {
    // One run: answers ordered by step: before, epoch 1, epoch 2, ...
    const rows = [...sampleRows(state.focusSamples)].sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
    for (const r of rows)
      group(r).answers.push({ key: `${r.step}|${show(tagOf(r))}`, head: `${show(tagOf(r))} (step ${show(r.step)})`, text: show(r.answer), tag: show(tagOf(r)) });
  }
  const mode = state.compare ? `compare:${state.selected.join(',')}:${state.compareTag}` : `run:${state.focusSamples}`;
  if (box.dataset.mode !== mode) { box.dataset.mode = mode; box.textContent = ''; box._cards = new Map(); }
  const cards = box._cards || (box._cards = new Map());
  const none = box.querySelector('p.muted');
  if (groups.size === 0) {
    if (!none) {
      box.textContent = '';
      cards.clear();
      box.append(el('p', 'muted', state.compare ? 'No answers recorded for the selected runs (samples.jsonl).'
        : 'No answers recorded for this run (samples.jsonl).'));
    }
    return;
  }
  if (none) none.remove();
  for (const [index, g] of groups) {
    let card = cards.get(index);
    if (!card) {
      card = el('div', 'sample', el('div', 'prompt'), el('div', 'answers'));
      card.dataset.index = index;
      card._cols = new Map();
      cards.set(index, card);
      box.append(card);
    }
    setText(card.firstChild, show(g.prompt));
    const grid = card.lastChild;
    const cols = [];
    if (g.truth !== undefined && g.truth !== null && g.truth !== '') cols.push({ key: '\u0000truth', head: 'ground truth', text: show(g.truth), truth: true });
    cols.push(...g.answers);
    let prev = null;
    for (const a of cols) {
      let col = card._cols.get(a.key);
      if (!col) {
        col = el('div', a.truth ? 'answer truth' : 'answer', el('h4'), el('div', 'text'));
        card._cols.set(a.key, col);
      }
      if (a.tag !== undefined) col.dataset.tag = a.tag;
      if (a.run !== undefined) col.dataset.run = a.run;
      const want = prev ? prev.nextSibling : grid.firstChild;
      if (want !== col) grid.insertBefore(col, want);
      prev = col;
      setText(col.firstChild, a.head);
      setText(col.lastChild, a.text);
    }
    const keep = new Set(cols.map(a => a.key));
    for (const [k, col] of card._cols) if (!keep.has(k)) { col.remove(); card._cols.delete(k); }
  }
  for (const [k, card] of cards) if (!groups.has(k)) { card.remove(); cards.delete(k); }
}

function renderEnv() {
  const table = document.getElementById('env');
  const d = state.data[state.focusEnv];
  const detail = d && d.detail;
  rebuildIfChanged(table, [state.focusEnv, detail ? detail.env : null, detail ? detail.status : null], () => {
    if (!detail) { table.append(el('tr', null, el('td', 'muted', 'No environment recorded (env.json).'))); return; }
    const flat = flatten(detail.env, '', {});
    const st = detail.status || {};
    for (const k of ['status', 'error', 'pid', 'host']) if (st[k] !== undefined) flat[`status.${k}`] = st[k];
    for (const [k, v] of Object.entries(flat))
      table.append(el('tr', null, el('td', 'mono', k), el('td', 'mono', Array.isArray(v) ? v.map(show).join(' ') : show(v))));
  });
}

// ---- wiring -------------------------------------------------------------------------

poll.now = () => { render(); poll(); };

document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('input[name=xmode]').forEach(r => r.addEventListener('change', () => { state.xmode = r.value; renderCharts(); }));
  document.getElementById('allconfig').addEventListener('change', e => { state.allConfig = e.target.checked; renderConfig(); });
  const smooth = document.getElementById('smoothing');
  smooth.addEventListener('input', () => {
    state.smoothing = Number(smooth.value);
    document.getElementById('smoothing-value').textContent = state.smoothing.toFixed(2);
    renderCharts();
  });
  document.getElementById('logy').addEventListener('change', e => { state.logY = e.target.checked; renderCharts(); });
  document.getElementById('compare').addEventListener('change', e => { state.compare = e.target.checked; render(); });
  document.getElementById('compare-tag').addEventListener('change', e => { state.compareTag = e.target.value; renderSamples(); });
  for (const [sid, field] of [['focus-samples', 'focusSamples'], ['focus-env', 'focusEnv']])
    document.getElementById(sid).addEventListener('change', e => { state[field] = e.target.value; poll.now(); });
  poll();
});
