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
  { id: 'cpu', title: 'CPU %', system: [/^cpu_percent$/, /^process_cpu_percent$/] },
  { id: 'gpu_util', title: 'GPU utilisation %', system: [/^gpu\d+_util_percent$/], empty: 'no GPU readings' },
  { id: 'gpu_power', title: 'GPU power (W) and temperature (°C)', system: [/^gpu\d+_power_w$/, /^gpu\d+_temp_c$/], empty: 'no GPU readings' },
];

const state = { runs: [], selected: [], data: {}, xmode: 'step', allConfig: false, focusSamples: null, focusEnv: null, pollOk: false };

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

function render() {
  renderWarnings();
  renderRuns();
  renderCharts();
  renderConfig();
  renderFocusSelect('focus-samples', 'focusSamples');
  renderFocusSelect('focus-env', 'focusEnv');
  renderSamples();
  renderEnv();
}

function renderWarnings() {
  const box = document.getElementById('warnings');
  box.textContent = '';
  for (const run of state.runs) {
    const d = state.data[run.id] || {};
    const all = new Set([...(run.warnings || []), ...((d.metrics || {}).warnings || []), ...((d.system || {}).warnings || []),
      ...((d.samples || {}).warnings || []), ...((d.detail || {}).warnings || [])]);
    if (all.size === 0) continue;
    const w = el('div', 'warning', el('strong', null, `${run.id}: `));
    w.dataset.run = run.id;
    const ul = el('ul');
    for (const msg of all) ul.append(el('li', null, msg));
    w.append(ul);
    box.append(w);
  }
}

function renderRuns() {
  const tb = document.querySelector('#runs tbody');
  tb.textContent = '';
  if (state.runs.length === 0) {
    const td = el('td', 'muted', 'No runs in this folder yet. Start one with `lorafit train --output_dir <this folder>/<name>`.');
    td.colSpan = 12;
    tb.append(el('tr', null, td));
  }
  for (const run of state.runs) {
    const hp = run.hyperparameters || {};
    const sel = state.selected.includes(run.id);
    const box = el('input');
    box.type = 'checkbox';
    box.checked = sel;
    box.addEventListener('change', () => {
      state.selected = box.checked ? [...state.selected, run.id] : state.selected.filter(x => x !== run.id);
      poll.now();
    });
    const status = run.stale ? 'stale' : run.status;
    const st = el('td', null, el('span', `badge ${status}`, run.stale ? 'running? (stale)' : run.status));
    if (run.error) st.append(el('div', 'error', run.error));
    const name = el('td', null, el('span', 'swatch'), run.id);
    name.firstChild.style.background = runColor(run.id);
    const model = el('td', 'mono', baseName(run.model));
    model.title = show(run.model);
    const data = el('td', 'mono', baseName(run.data));
    data.title = show(run.data);
    const step = run.total_steps ? `${show(run.last_step)} / ${run.total_steps}` : show(run.last_step);
    const tr = el('tr', sel ? 'selected' : null, el('td', null, box), name, st, model, data,
      el('td', 'num', show(hp.learning_rate)), el('td', 'num', `${show(hp.lora_r)} / ${show(hp.lora_alpha)}`),
      el('td', 'num', `${show(hp.per_device_train_batch_size)} × ${show(hp.gradient_accumulation_steps)}`),
      el('td', 'num', `${show(hp.num_train_epochs)} / ${show(hp.max_steps)}`), el('td', 'num', step),
      el('td', 'num', run.final_loss === null ? '–' : fmtNum(run.final_loss)), el('td', 'num', fmtDuration(run.duration_s)));
    tr.dataset.run = run.id;
    tb.append(tr);
  }
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
        let scale = 1;
        for (const [p, f] of spec.scalePattern || []) if (p.test(key)) scale = f;
        const useTime = forceTime || state.xmode === 'time';
        const origin = t0 || (s.t.find(v => v !== null) ?? 0);
        const xs = [], ys = [];
        for (let i = 0; i < s.y.length; i++) {
          const x = useTime ? (s.t[i] === null ? null : (s.t[i] - origin) / 60) : s.x[i];
          if (x === null) continue;
          xs.push(x); ys.push(s.y[i] * scale);
        }
        out.push({ label: `${id} · ${key}`, color: runColor(id), dash: dashes[k++ % dashes.length], x: xs, y: ys });
      }
    };
    if (spec.metrics) add('metrics', spec.metrics, false);
    if (spec.system) add('system', spec.system, true);
  }
  return out;
}

function renderCharts() {
  const box = document.getElementById('charts');
  for (const spec of CHARTS) {
    let c = document.getElementById(`chart-${spec.id}`);
    if (!c) { c = el('div', 'chart'); c.id = `chart-${spec.id}`; box.append(c); }
    // System readings have no step: their x axis is always minutes since the run started.
    const xlabel = !spec.metrics || state.xmode === 'time' ? 'minutes' : 'step';
    drawChart(c, { title: spec.title, series: chartSeries(spec), empty: spec.empty, xlabel });
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
  table.textContent = '';
  const ids = state.selected.filter(id => state.data[id] && state.data[id].detail);
  if (ids.length === 0) { table.append(el('tr', null, el('td', 'muted', 'Select a run to see its settings.'))); return; }
  const flat = ids.map(id => flatten(state.data[id].detail.config, '', {}));
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
}

function renderFocusSelect(selectId, field) {
  const s = document.getElementById(selectId);
  const ids = state.runs.map(r => r.id);
  if (!state[field] || !ids.includes(state[field])) state[field] = state.selected[0] || ids[0] || null;
  if (s.options.length !== ids.length || [...s.options].some((o, i) => o.value !== ids[i])) {
    s.textContent = '';
    for (const id of ids) { const o = el('option', null, id); o.value = id; s.append(o); }
  }
  s.value = state[field] || '';
}

function renderSamples() {
  const box = document.getElementById('samples');
  box.textContent = '';
  const d = state.data[state.focusSamples];
  const rows = d && d.samples ? d.samples.samples : [];
  if (rows.length === 0) { box.append(el('p', 'muted', 'No answers recorded for this run (samples.jsonl).')); return; }
  // One card per eval prompt; answers ordered by step: before, epoch 1, epoch 2, ...
  const byIndex = new Map();
  for (const r of rows) {
    const key = r.index ?? r.prompt;
    if (!byIndex.has(key)) byIndex.set(key, { prompt: r.prompt, truth: r.ground_truth ?? r.reference, answers: [] });
    byIndex.get(key).answers.push(r);
  }
  for (const [index, g] of byIndex) {
    const card = el('div', 'sample', el('div', 'prompt', show(g.prompt)));
    card.dataset.index = String(index);
    const grid = el('div', 'answers');
    if (g.truth !== undefined && g.truth !== null && g.truth !== '')
      grid.append(el('div', 'answer truth', el('h4', null, 'ground truth'), el('div', 'text', show(g.truth))));
    g.answers.sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
    for (const a of g.answers) {
      const tag = a.tag ?? a.when;  // "when": the trainer's field name before RunStore
      const col = el('div', 'answer', el('h4', null, `${show(tag)} (step ${show(a.step)})`), el('div', 'text', show(a.answer)));
      col.dataset.tag = show(tag);
      grid.append(col);
    }
    card.append(grid);
    box.append(card);
  }
}

function renderEnv() {
  const table = document.getElementById('env');
  table.textContent = '';
  const d = state.data[state.focusEnv];
  if (!d || !d.detail) { table.append(el('tr', null, el('td', 'muted', 'No environment recorded (env.json).'))); return; }
  const flat = flatten(d.detail.env, '', {});
  const st = d.detail.status || {};
  for (const k of ['status', 'error', 'pid', 'host']) if (st[k] !== undefined) flat[`status.${k}`] = st[k];
  for (const [k, v] of Object.entries(flat))
    table.append(el('tr', null, el('td', 'mono', k), el('td', 'mono', Array.isArray(v) ? v.map(show).join(' ') : show(v))));
}

// ---- wiring -------------------------------------------------------------------------

poll.now = () => { render(); poll(); };

document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('input[name=xmode]').forEach(r => r.addEventListener('change', () => { state.xmode = r.value; renderCharts(); }));
  document.getElementById('allconfig').addEventListener('change', e => { state.allConfig = e.target.checked; renderConfig(); });
  for (const [sid, field] of [['focus-samples', 'focusSamples'], ['focus-env', 'focusEnv']])
    document.getElementById(sid).addEventListener('change', e => { state[field] = e.target.value; poll.now(); });
  poll();
});
