// list: header, filters, full-text search, sorting, paging and the keys of the list.
$('runs').append(...RUNS.map(r => el('span', null, el('b', {text: r.label + ' '}),
  `${r.benchmark} · ${r.model || '?'} · ${r.passed}/${r.scored} passed · ${r.infra} infra · ${r.path}`)));
const kinds = [...new Set(ROLL.map(r => kindLabel(r.ek)))].sort();
const callKinds = [...new Set(ROLL.flatMap(r => r.ck))].sort();
const usedTools = [...new Set(ROLL.flatMap(r => r.tu))].sort();
const failedTools = [...new Set(ROLL.flatMap(r => r.ft))].sort();
const rewards = [...new Set(ROLL.map(r => r.reward).filter(x => x !== null && x !== undefined))].sort((a, b) => a - b);
options($('f-run'), [['', 'all'], ...RUNS.map((r, i) => [String(i), r.label + ': ' + (r.model || r.path)])]);
if (RUNS.length < 2) $('f-run').parentElement.hidden = true;
options($('f-reward'), [['', 'all'], ['pass', 'passed'], ['fail', 'failed (scored)'], ['infra', 'infra failure'],
  ['suspect', 'passed, patch changes test infrastructure'],
  ...(rewards.length <= 12 ? rewards.map(x => ['=' + x, 'reward = ' + fmt(x, 3)]) : [])]);
options($('f-kind'), [['', 'any'], ...kinds.map(k => [k, k])]);
options($('f-callkind'), [['', 'any'], ['-', '(no failed call)'], ...callKinds.map(k => [k, k])]);
options($('f-tool'), [['', 'any'], ['-', '(no failed call)'], ...failedTools.map(t => ['f:' + t, 'failed: ' + t]),
  ...usedTools.map(t => ['u:' + t, 'used: ' + t])]);
const CATS = ['fixed', 'broken', 'improved', 'regressed', 'flaky', 'same', 'unpaired'];
if (COMPARE) options($('f-change'), [['', 'any'], ...CATS.filter(c => (COMPARE.counts[c] || 0) > 0).map(c => [c, `${c} (${COMPARE.counts[c]})`])]);
else $('f-change').parentElement.hidden = true;
const FILTERS = ['f-q', 'f-run', 'f-reward', 'f-change', 'f-kind', 'f-callkind', 'f-tool', 'f-tmin', 'f-tmax', 'f-kmin', 'f-kmax'];

// ------------------------------------------------------------ full-text search (index loaded on first use)
const SEARCH = {text: null, loading: false};
window.reactEvalSearch = function(part){
  SEARCH.text = SEARCH.text || new Map();
  for (const [i, t] of Object.entries(part)) SEARCH.text.set(Number(i), t);
  SEARCH.parts = (SEARCH.parts || 0) + 1;
  if (SEARCH.parts === DATA.search.length) { SEARCH.loading = false; refilter(); }
};
function ensureSearch(){
  if (SEARCH.text && SEARCH.parts === DATA.search.length) return true;
  if (!SEARCH.loading) { SEARCH.loading = true; for (const src of DATA.search) loadScript(src, () => { $('search-info').textContent = 'could not load ' + src; }); }
  return false;
}
function matches(r, q){
  const hay = (r.task + ' ' + r.why + ' ' + failText(r.ff) + ' ' + r.tu.join(' ')).toLowerCase();
  if (hay.includes(q)) return true;
  const t = SEARCH.text && SEARCH.text.get(r.i);
  return !!t && t.includes(q);
}

// ------------------------------------------------------------ filtering and sorting
const state = {page: 0, rows: ROLL, sort: COMPARE ? 'task' : null, dir: 1, sel: -1};  // compare: a task's rollouts together
if (COMPARE) document.querySelector('#rollouts th[data-sort=task]').classList.add('sorted-asc');
const num = (id) => { const v = $(id).value.trim(); return v === '' ? null : Number(v); };
function filtered(){
  const run = $('f-run').value, reward = $('f-reward').value, kind = $('f-kind').value, ck = $('f-callkind').value;
  const tool = $('f-tool').value, change = $('f-change').value, q = $('f-q').value.trim().toLowerCase();
  const tmin = num('f-tmin'), tmax = num('f-tmax'), kmin = num('f-kmin'), kmax = num('f-kmax');
  let info = '';
  if (q) info = ensureSearch() ? 'searching arguments and outputs too' : 'loading the full-text index…';
  $('search-info').textContent = info;
  return ROLL.filter(r =>
    (run === '' || String(r.run) === run) &&
    (reward === '' || (reward.startsWith('=') ? r.reward === Number(reward.slice(1)) :
      reward === 'suspect' ? r.wc === 'suspect' : r.outcome === reward)) &&
    (kind === '' || kindLabel(r.ek) === kind) &&
    (ck === '' || (ck === '-' ? r.ck.length === 0 : r.ck.includes(ck))) &&
    (tool === '' || (tool === '-' ? r.ft.length === 0 : tool.startsWith('f:') ? r.ft.includes(tool.slice(2)) : r.tu.includes(tool.slice(2)))) &&
    (change === '' || r.cat === change) &&
    (tmin === null || r.turns >= tmin) && (tmax === null || r.turns <= tmax) &&
    (kmin === null || r.tok >= kmin) && (kmax === null || r.tok <= kmax) &&
    (q === '' || matches(r, q)));
}
const SORT_VALUE = {run: r => r.run, task: r => r.task, rep: r => r.rep, reward: r => r.reward ?? -1,
  outcome: r => r.outcome, why: r => r.why, turns: r => r.turns, tc: r => r.tc, te: r => r.te,
  ff: r => r.ff ? r.ff.turn : 1e9, tok: r => r.tok, wall: r => r.wall};
function sorted(rows){
  if (!state.sort) return rows;
  const key = SORT_VALUE[state.sort], dir = state.dir;
  return rows.map((r, n) => [r, n]).sort((a, b) => {
    const x = key(a[0]), y = key(b[0]);
    return (x < y ? -dir : x > y ? dir : a[1] - b[1]);
  }).map(p => p[0]);
}
function refilter(keepPage){ state.key = filterKey(); state.rows = sorted(filtered()); if (!keepPage) { state.page = 0; state.sel = -1; } renderList(); }
const TYPED = new Set(['f-q', 'f-tmin', 'f-tmax', 'f-kmin', 'f-kmax']);
// a typed field also reports 'change' when it loses focus: re-rendering then would swallow the click
// that took the focus away, so only a real change of the filters re-renders the list
const filterKey = () => FILTERS.map(id => $(id).value).join('\u0000');
function changed(){ const key = filterKey(); if (key !== state.key) refilter(); }
for (const id of FILTERS) {
  $(id).addEventListener('change', changed);
  if (TYPED.has(id)) $(id).addEventListener('input', changed);
}
$('f-reset').addEventListener('click', () => { for (const id of FILTERS) $(id).value = ''; setChange(''); refilter(); });
$('prev').addEventListener('click', () => { if (state.page > 0) { state.page--; state.sel = -1; renderList(); } });
$('next').addEventListener('click', () => { if ((state.page + 1) * PAGE < state.rows.length) { state.page++; state.sel = -1; renderList(); } });
for (const th of document.querySelectorAll('#rollouts th[data-sort]')) th.addEventListener('click', () => {
  const key = th.dataset.sort;
  if (state.sort === key) state.dir = -state.dir; else { state.sort = key; state.dir = 1; }
  for (const other of document.querySelectorAll('#rollouts th')) other.classList.remove('sorted-asc', 'sorted-desc');
  th.classList.add(state.dir > 0 ? 'sorted-asc' : 'sorted-desc');
  refilter();
});

// ------------------------------------------------------------ compare bar (view A B)
function setChange(value){
  $('f-change').value = value;
  for (const chip of document.querySelectorAll('#compare-bar .chip')) chip.classList.toggle('on', chip.dataset.cat === value);
}
if (COMPARE) {
  const bar = $('compare-bar'); bar.hidden = false;
  const c = COMPARE;
  bar.append(el('div', null, el('b', {text: `A → B: pass rate ${(100 * c.base_pass_rate).toFixed(1)}% → ${(100 * c.cand_pass_rate).toFixed(1)}% `}),
    `(${c.delta >= 0 ? '+' : ''}${(100 * c.delta).toFixed(1)} pp, ${c.test}, p = ${c.p_value.toPrecision(3)}) over ${c.paired_tasks} paired tasks`));
  const chips = el('div', {class: 'chips'});
  for (const cat of CATS) if ((c.counts[cat] || 0) > 0) chips.append(el('button', {type: 'button', class: 'chip c-' + cat, 'data-cat': cat,
    onclick: () => { setChange($('f-change').value === cat ? '' : cat); refilter(); }}, `${cat} ${c.counts[cat]}`));
  bar.append(chips);
  for (const w of c.warnings) bar.append(el('div', {class: 'warn', text: '⚠ ' + w}));
}

// ------------------------------------------------------------ rows
function renderList(){
  const rows = state.rows, start = state.page * PAGE, end = Math.min(rows.length, start + PAGE);
  $('page-info').textContent = rows.length ? `${start + 1}–${end} of ${rows.length}` + (rows.length < ROLL.length ? ` (filtered from ${ROLL.length})` : '') : `0 of ${ROLL.length}`;
  $('prev').disabled = state.page === 0; $('next').disabled = end >= rows.length;
  const body = document.querySelector('#rollouts tbody');
  body.replaceChildren(...rows.slice(start, end).map((r, n) => {
    const link = r.ff ? el('a', {href: '#r' + r.i + '/f', class: 'fail-link', title: 'open at the first failing call',
      onclick: (e) => { e.preventDefault(); e.stopPropagation(); openRollout(r.i, true); }}, failText(r.ff)) : '';
    const task = el('td', {class: 'task', title: r.task, text: r.task});
    if (r.cat && COMPARE) task.append(el('span', {class: 'cat cat-' + r.cat, text: r.cat}));
    return el('tr', {'data-i': r.i, class: n === state.sel ? 'selected' : null, onclick: () => openRollout(r.i, false)},
      el('td', {text: RUNS[r.run].label}), task, el('td', {class: 'num', text: r.rep}),
      el('td', {class: 'num', text: fmt(r.reward, 3)}), el('td', {class: 'o-' + r.outcome}, r.outcome, r.wc === 'suspect' ? badge('⚠ tests', 'warn', 'the patch changes test infrastructure') : null),
      el('td', {class: 'why why-' + r.wc, text: r.why, title: r.why}),
      el('td', {class: 'num', text: r.turns}), el('td', {class: 'num', text: r.tc}), el('td', {class: 'num', text: r.te}),
      el('td', {class: 'ff'}, link), el('td', {class: 'num', text: r.tok}), el('td', {class: 'num', text: fmt(r.wall / 1000, 1)}));
  }));
}
function selectRow(delta){
  const count = Math.min(PAGE, state.rows.length - state.page * PAGE);
  if (count <= 0) return;
  let sel = state.sel + delta;
  if (sel >= count) { if ((state.page + 1) * PAGE < state.rows.length) { state.page++; sel = 0; } else sel = count - 1; }
  if (sel < 0) { if (state.page > 0) { state.page--; sel = PAGE - 1; } else sel = 0; }
  state.sel = sel; renderList();
  const row = document.querySelector('#rollouts tbody tr.selected');
  if (row) row.scrollIntoView({block: 'nearest'});
}
function listFromHash(query){
  const params = new URLSearchParams(query);
  const map = {q: 'f-q', run: 'f-run', outcome: 'f-reward', change: 'f-change', kind: 'f-kind', call: 'f-callkind', tool: 'f-tool'};
  for (const id of FILTERS) $(id).value = '';
  for (const [k, id] of Object.entries(map)) if (params.has(k)) $(id).value = params.get(k);
  if (params.has('task')) $('f-q').value = params.get('task');
  setChange($('f-change').value);
  refilter();
}
