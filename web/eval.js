// The evaluation section of the dashboard (lorafit eval --output_dir): the score table across
// base and adapters, and per-question answers beside the reference, filterable to the
// questions fine-tuning changed. Self-contained (its own polling of api/evals and api/eval) so
// it does not depend on how app.js refreshes the rest of the page. Text only (textContent).
'use strict';

(() => {
  const EVAL_POLL_MS = Number(new URLSearchParams(location.search).get('interval') || 2000) * 2;
  const st = { runs: [], focus: null, data: null, changedOnly: false, loadedFor: null, mtimeKey: null };

  function mk(tag, cls, ...children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  async function json(path) {
    const r = await fetch(path, { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json();
  }
  const num = v => (typeof v === 'number' && isFinite(v) ? v.toFixed(2) : '–');

  function renderScores(box, d) {
    const models = d.models || Object.keys(d.results || {});
    const res = d.results || {};
    const table = mk('table', 'evalscores');
    const head = mk('tr', null, mk('th', null, d.task === 'mcq' ? 'source' : 'metric'));
    for (const m of models) head.append(mk('th', null, m));
    table.append(mk('thead', null, head));
    const body = mk('tbody');
    const keys = d.task === 'mcq'
      ? [...Object.keys((res[models[0]] || {}).per_source || {}), 'accuracy']
      : ['rouge-1', 'rouge-2', 'rouge-l', 'bleu-4'];
    for (const k of keys) {
      const tr = mk('tr', k === 'accuracy' ? 'mean' : null, mk('td', 'mono', k === 'accuracy' ? 'mean (accuracy)' : k));
      for (const m of models) {
        const s = res[m] || {};
        tr.append(mk('td', 'num', num(d.task === 'mcq' && k !== 'accuracy' ? (s.per_source || {})[k] : s[k])));
      }
      body.append(tr);
    }
    const n = mk('tr', null, mk('td', 'mono', 'n'));
    for (const m of models) n.append(mk('td', 'num', String((res[m] || {}).n ?? '–')));
    body.append(n);
    table.append(body);
    box.append(mk('div', 'scroll', table));
    const notes = [];
    if (d.truncated) notes.push(`${d.truncated} prompts were truncated to fit the context`);
    if (d.settings) notes.push(`greedy, max_new_tokens ${d.settings.max_new_tokens}` +
      (d.task === 'mcq' ? `, ${d.settings.num_few_shot}-shot` : ''));
    if (notes.length) box.append(mk('p', 'muted', notes.join(' · ')));
  }

  function renderRows(box, d) {
    const models = d.models || [];
    const rows = (d.rows || []).filter(r => !st.changedOnly || r.changed);
    const changed = (d.rows || []).filter(r => r.changed).length;
    box.append(mk('p', 'muted', `${changed} of ${(d.rows || []).length} questions answered differently than by ${models[0] || 'the first model'}` +
      (st.changedOnly ? `; showing those` : '')));
    const table = mk('table', 'evalrows');
    const head = mk('tr', null, mk('th', null, 'question'), mk('th', null, 'reference'));
    for (const m of models) head.append(mk('th', null, m));
    table.append(mk('thead', null, head));
    const body = mk('tbody');
    const LIMIT = 500;  // keep the page light; the file has them all
    for (const r of rows.slice(0, LIMIT)) {
      const tr = mk('tr', r.changed ? 'changed' : null, mk('td', 'mono', r.id), mk('td', 'text', r.reference));
      tr.dataset.id = r.id;
      for (const m of models) {
        const a = (r.answers || {})[m];
        if (!a) { tr.append(mk('td', 'muted', '–')); continue; }
        const cell = mk('td', 'text');
        if (d.task === 'mcq') {
          cell.append(mk('b', a.correct ? 'right' : 'wrong', `${a.answer || '∅'} ${a.correct ? '✓' : '✗'}`), mk('br'));
          cell.classList.add(a.correct ? 'right' : 'wrong');
        } else if (typeof a['rouge-l'] === 'number') {
          cell.append(mk('b', null, `ROUGE-L ${a['rouge-l'].toFixed(1)}`), mk('br'));
        }
        cell.append(mk('span', 'pred', a.prediction));
        tr.append(cell);
      }
      body.append(tr);
    }
    table.append(body);
    box.append(mk('div', 'scroll', table));
    if (rows.length > LIMIT) box.append(mk('p', 'muted', `first ${LIMIT} of ${rows.length} shown (predictions.jsonl has all)`));
  }

  function render() {
    const box = document.getElementById('evalbox');
    const sel = document.getElementById('focus-eval');
    if (!box || !sel) return;
    if (sel.options.length !== st.runs.length || [...sel.options].some((o, i) => o.value !== st.runs[i])) {
      sel.textContent = '';
      for (const id of st.runs) { const o = mk('option', null, id); o.value = id; sel.append(o); }
    }
    sel.value = st.focus || '';
    box.textContent = '';
    const d = st.data;
    if (!d || !d.found) {
      box.append(mk('p', 'muted', 'No evaluation results in this runs folder (lorafit eval --output_dir DIR writes eval_results.json).'));
      return;
    }
    for (const w of d.warnings || []) box.append(mk('p', 'warning', w));
    renderScores(box, d);
    renderRows(box, d);
  }

  async function poll() {
    try {
      const r = await json('api/evals');
      st.runs = r.runs || [];
      if (!st.focus || !st.runs.includes(st.focus)) st.focus = st.runs[0] || null;
      if (st.focus) {
        const d = await json(`api/eval?id=${encodeURIComponent(st.focus)}`);
        const key = JSON.stringify([st.focus, d.results, (d.rows || []).length]);
        if (key !== st.mtimeKey) { st.data = d; st.mtimeKey = key; render(); }
      } else if (st.data !== null || st.mtimeKey === null) {
        st.data = null; st.mtimeKey = ''; render();
      }
    } catch (e) {
      /* the main page shows connection problems */
    } finally {
      setTimeout(poll, EVAL_POLL_MS);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    const sel = document.getElementById('focus-eval');
    const only = document.getElementById('eval-changed');
    if (!sel || !only) return;
    sel.addEventListener('change', e => { st.focus = e.target.value; st.mtimeKey = null; poll(); });
    only.addEventListener('change', e => { st.changedOnly = e.target.checked; render(); });
    poll();
  });
})();
