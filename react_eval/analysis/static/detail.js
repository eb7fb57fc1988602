// detail: one rollout (or two, aligned by compare.js): the why line, the patch, turns, calls, verification.
function whyLine(r){
  const label = r.outcome === 'pass' ? (r.wc === 'suspect' ? 'passed, but' : 'passed') : r.outcome === 'infra' ? 'infrastructure' : 'failed';
  return el('div', {class: 'why-line w-' + (r.wc === 'suspect' ? 'suspect' : r.outcome === 'pass' ? 'passed' : r.outcome === 'infra' ? 'infra' : 'failed')},
    el('b', {text: 'why: ' + label}), ' ' + r.why);
}
function paneHead(r, chunk, others, onPick){
  const res = chunk.result;
  const head = el('div', {class: 'pane-head'});
  head.append(el('h2', null, `${RUNS[r.run].label} · ${RUNS[r.run].model || ''} · task ${r.task} · repeat ${r.rep} `,
    el('span', {class: 'o-' + r.outcome, text: r.outcome})));
  head.append(whyLine(r));
  head.append(el('div', {class: 'facts'},
    el('span', null, 'reward ', el('b', {text: fmt(res.reward, 3)})),
    el('span', null, 'ended ', el('b', {text: kindLabel(res.error_kind)})),
    el('span', null, 'turns ', el('b', {text: res.turns})),
    el('span', null, 'tool calls ', el('b', {text: `${res.tool_calls} (${res.tool_errors} failed)`})),
    el('span', null, 'tokens ', el('b', {text: `${res.prompt_tokens} prompt / ${res.completion_tokens} completion / ${res.cached_tokens} cached / ${res.reasoning_tokens} reasoning`})),
    el('span', null, 'model ', el('b', {text: fmt(res.model_latency_ms / 1000, 1) + ' s'}),
      ' · tools ', el('b', {text: fmt(res.tool_latency_ms / 1000, 1) + ' s'}),
      ' · wall ', el('b', {text: fmt(res.wall_ms / 1000, 1) + ' s'}))));
  if (others && others.length > 1) {
    const pick = el('select', {class: 'pick-repeat', onchange: (e) => onPick(Number(e.target.value))});
    options(pick, others.map(o => [String(o.i), `repeat ${o.rep} (${o.outcome})`]));
    pick.value = String(r.i);
    head.append(el('label', {class: 'facts'}, 'repeat: ', pick));
  }
  if (res.error) head.append(el('div', {class: 'event ev-error', text: `${kindLabel(res.error_kind)}: ${res.error}`}));
  if (res.artifact !== null && res.artifact !== undefined) {
    const lines = res.artifact.split('\n').length;
    head.append(el('details', {class: 'patch-box', open: true}, el('summary', {text: res.artifact.trim() ? `captured patch (${lines} lines)` : 'captured patch: empty (the agent changed no file)'}),
      res.artifact.trim() ? unifiedDiff(res.artifact) : null));
  }
  if (r.ff) head.append(el('button', {type: 'button', class: 'jump', onclick: () => gotoFailure(0)}, '⚑ first failing call: ' + failText(r.ff)));
  return head;
}
function callSig(step){
  const calls = step.tool_calls || [];
  if (!calls.length) return 'say:' + textOf(step.message).trim();
  const results = new Map(((step.observation || {}).results || []).map(o => [o.source_call_id, (o.extra || {})]));
  return calls.map(c => { const x = results.get(c.tool_call_id) || {};
    return c.function_name + JSON.stringify(c.arguments) + '|' + !!x.is_error + '|' + x.exit_code + '|' + x.error_kind; }).join('&');
}
// Turn blocks of a trajectory: [{turn, node, sig}] (turn 0: system and user steps).
function stepBlocks(traj, r){
  let turn = 0, firstMarked = false;
  const ctx = {files: new Map(), lastRead: null}, blocks = [];
  for (const step of traj.steps || []) {
    const src = step.source;
    const box = el('div', {class: 'step src-' + src, 'data-step': step.step_id});
    const head = el('div', {class: 'step-head'});
    box.append(head);
    if (src !== 'agent') {
      head.append(el('span', {class: 'who', text: src}));
      const text = textOf(step.message);
      box.append(src === 'system' ? el('details', null, el('summary', {text: `system prompt (${text.length} characters)`}), folded(text))
                                  : el('div', {class: 'msg'}, folded(text, 'msg-pre')));
    } else {
      turn += 1;
      head.append(el('span', {class: 'who', text: 'turn ' + turn}));
      const m = step.metrics || {}, mx = m.extra || {};
      if (m.prompt_tokens !== undefined) head.append(el('span', {text: `prompt ${m.prompt_tokens} · completion ${m.completion_tokens ?? '-'} · cached ${m.cached_tokens ?? '-'}` + (mx.reasoning_tokens !== undefined ? ` · reasoning ${mx.reasoning_tokens}` : '')}));
      if (mx.latency_ms !== undefined) head.append(el('span', {text: `model ${fmt(mx.latency_ms / 1000, 2)} s`}));
      if (mx.finish_reason) head.append(badge(mx.finish_reason));
      if (step.reasoning_content) box.append(el('details', {class: 'reasoning'},
        el('summary', {text: `reasoning (${step.reasoning_content.length} characters)`}), el('pre', {text: step.reasoning_content})));
      const text = textOf(step.message);
      if (text) box.append(el('div', {class: 'msg', text}));
      const results = new Map(((step.observation || {}).results || []).map(o => [o.source_call_id, o]));
      for (const call of step.tool_calls || []) {
        const obs = results.get(call.tool_call_id); results.delete(call.tool_call_id);
        const ox = (obs && obs.extra) || {};
        const isFirst = !firstMarked && !!ox.is_error;
        if (isFirst) firstMarked = true;
        const anchor = `r${r.i}/c/${call.tool_call_id}`;
        const div = el('div', {class: 'call' + (ox.is_error ? ' err' : '') + (isFirst ? ' first-failure' : ''), id: anchor,
                               'data-tool': call.function_name, 'data-turn': turn, 'data-kind': ox.error_kind || ''});
        const ch = el('div', {class: 'call-head'});
        if (isFirst) ch.append(el('span', {class: 'first-label', text: '⚑ first failing call'}));
        ch.append(el('span', {class: 'tool-name', text: call.function_name}));
        if (ox.exit_code !== undefined && ox.exit_code !== null) ch.append(badge('exit ' + ox.exit_code, ox.exit_code === 0 ? 'good' : 'bad'));
        if (ox.is_error) ch.append(badge(ox.error_kind || 'error', 'bad'));
        if (ox.latency_ms !== undefined) ch.append(badge(fmt(ox.latency_ms, 0) + ' ms'));
        if (ox.truncated) ch.append(badge('output truncated', 'warn'));
        if (!obs) ch.append(badge('no observation', 'warn'));
        ch.append(el('a', {class: 'anchor', href: '#' + anchor, title: 'link to this call', text: '#'}));
        div.append(ch, el('div', {class: 'args'}, renderArgs(call, ctx)));
        if (obs) div.append(renderObservation(call, obs, ox, ctx));
        box.append(div);
      }
      for (const obs of results.values()) box.append(el('pre', {text: textOf(obs.content)}));
    }
    for (const ev of (step.extra && step.extra.events) || []) box.append(renderEvent(ev));
    if (src === 'agent') blocks.push({turn, node: box, sig: callSig(step)});
    else if (blocks.length && !blocks[blocks.length - 1].sig) blocks[blocks.length - 1].node.append(box);
    else blocks.push({turn, node: el('div', {class: 'preamble'}, box), sig: null});
  }
  for (const ev of (traj.extra && traj.extra.events) || []) blocks.length && blocks[0].node.append(renderEvent(ev));
  return blocks;
}
function renderEvent(ev){
  const {kind, timestamp, ...rest} = ev;
  const message = rest.message; delete rest.message;
  const label = rest.error_kind ? `${kind}: ${rest.error_kind}` : kind; delete rest.error_kind;
  const extra = Object.entries(rest).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
  return el('div', {class: 'event' + (kind === 'error' ? ' ev-error' : '')}, el('b', {text: label}), message ? ' — ' + message : '', extra ? ' (' + extra + ')' : '');
}
// Consecutive turns making the same call with the same outcome fold into one, marked ×n.
function collapseRepeats(blocks){
  const out = [];
  for (const b of blocks) {
    const last = out[out.length - 1];
    if (last && b.sig && !b.sig.startsWith('say:') && last.sig === b.sig) { last.dups.push(b); continue; }
    out.push({...b, dups: []});
  }
  for (const b of out) if (b.dups.length) {
    const n = b.dups.length + 1;
    const hidden = el('div', {class: 'repeats', hidden: true}, ...b.dups.map(d => d.node));
    const toggle = el('button', {type: 'button', class: 'more', text: `show the ${n - 1} identical repeats (turns ${b.dups[0].turn}–${b.dups[b.dups.length - 1].turn})`,
      onclick: () => { hidden.hidden = !hidden.hidden; toggle.textContent = hidden.hidden ? `show the ${n - 1} identical repeats` : 'hide the repeats'; }});
    const head = b.node.querySelector('.step-head');
    head.querySelector('.who').textContent = `turns ${b.turn}–${b.dups[b.dups.length - 1].turn}`;
    head.append(badge('×' + n, 'repeat', `the same call with the same outcome, ${n} turns in a row`));
    b.node.append(toggle);
    b.extra = hidden;
  }
  return out;
}
function resultBox(res){
  const end = el('div', {class: 'step result'}, el('div', {class: 'step-head'}, el('span', {class: 'who', text: 'result'})));
  if (res.final_message) end.append(el('div', {class: 'msg', text: res.final_message}));
  if (res.verification && Object.keys(res.verification).length)
    end.append(el('details', {open: true}, el('summary', {text: 'verification'}), renderVerification(res.verification)));
  return end;
}
function renderPane(pane, r, chunk, others){
  const onPick = (i) => showPane(pane, i, false, others);
  pane.replaceChildren(paneHead(r, chunk, others, onPick));
  if (!chunk.trajectory) pane.append(el('p', {class: 'empty', text: 'no trajectory was recorded for this rollout'}));
  else for (const b of collapseRepeats(stepBlocks(chunk.trajectory, r))) { pane.append(b.node); if (b.extra) pane.append(b.extra); }
  pane.append(resultBox(chunk.result));
}

// ------------------------------------------------------------ opening rollouts, failures, keys, routes
let current = null, failIndex = -1;
function setHash(hash){ if (location.hash !== hash) history.pushState(null, '', hash); }
function openRollout(i, jump, callId){
  const r = ROLL[i]; current = i; failIndex = -1;
  $('list-view').hidden = true; $('detail-view').hidden = false;
  $('detail-title').textContent = `task ${r.task} · repeat ${r.rep}`;
  setHash('#r' + i + (callId ? '/c/' + callId : jump ? '/f' : ''));
  const pos = state.rows.indexOf(r);
  $('prev-r').disabled = pos <= 0; $('next-r').disabled = pos < 0 || pos >= state.rows.length - 1;
  const panes = $('panes'); panes.replaceChildren(); panes.className = '';
  const after = () => { updateFailPos(); if (callId) gotoCall(callId); else if (jump) gotoFailure(0); else window.scrollTo(0, 0); };
  if (RUNS.length > 1) { showPair(panes, r).then(after); return; }
  const pane = el('div', {class: 'pane'}); panes.append(pane);
  showPane(pane, i, false, null).then(after);
}
function showPane(pane, i, jump, others){
  pane.replaceChildren(el('p', {class: 'empty', text: 'loading…'}));
  return loadChunk(i).then(chunk => { renderPane(pane, ROLL[i], chunk, others); updateFailPos(); if (jump) gotoFailure(0); },
    err => pane.replaceChildren(el('p', {class: 'empty', text: String(err)})));
}
function failures(){ return [...document.querySelectorAll('#panes .call.err')].filter(n => n.offsetParent !== null); }
function updateFailPos(){
  const n = failures().length;
  $('fail-pos').textContent = n ? (failIndex >= 0 ? `failure ${failIndex + 1} of ${n}` : `${n} failing call${n > 1 ? 's' : ''}`) : 'no failing call';
  $('prev-f').disabled = $('next-f').disabled = n === 0;
}
function focusCall(target){
  for (const c of document.querySelectorAll('#panes .call.current')) c.classList.remove('current');
  target.classList.add('current');
  target.scrollIntoView({block: 'center'});
  target.classList.remove('flash'); void target.offsetWidth; target.classList.add('flash');
}
function gotoFailure(k){
  const list = failures(); if (!list.length) return;
  const first = document.querySelector('#panes .first-failure');
  failIndex = k === 0 && first ? Math.max(0, list.indexOf(first)) : ((k % list.length) + list.length) % list.length;
  focusCall(list[failIndex]); updateFailPos();
}
function gotoCall(id){
  const target = document.getElementById(`r${current}/c/${id}`) || [...document.querySelectorAll('#panes .call')].find(n => n.id.endsWith('/c/' + id));
  if (!target) return;
  let box = target.closest('.repeats'); if (box) box.hidden = false;
  focusCall(target);
}
function stepRollout(delta){
  const pos = state.rows.indexOf(ROLL[current]);
  const next = state.rows[pos + delta];
  if (next) { state.page = Math.floor((pos + delta) / PAGE); state.sel = (pos + delta) % PAGE; openRollout(next.i, false); }
}
function showList(){ $('detail-view').hidden = true; $('list-view').hidden = false; current = null; renderList(); }
$('back').addEventListener('click', () => { history.pushState(null, '', location.pathname + location.search); showList(); });
$('prev-r').addEventListener('click', () => stepRollout(-1));
$('next-r').addEventListener('click', () => stepRollout(1));
$('prev-f').addEventListener('click', () => gotoFailure(failIndex < 0 ? -1 : failIndex - 1));
$('next-f').addEventListener('click', () => gotoFailure(failIndex + 1));
$('keys-help').addEventListener('click', () => { $('keys').hidden = !$('keys').hidden; });
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test((e.target || {}).tagName || '');
  if (typing) { if (e.key === 'Escape') e.target.blur(); return; }
  const inDetail = current !== null;
  const act = {
    '/': () => { if (inDetail) $('back').click(); setTimeout(() => $('f-q').focus(), 0); },
    '?': () => $('keys-help').click(),
    'j': () => inDetail ? stepRollout(1) : selectRow(1),
    'k': () => inDetail ? stepRollout(-1) : selectRow(-1),
    'n': () => inDetail && gotoFailure(failIndex + 1),
    'p': () => inDetail && gotoFailure(failIndex < 0 ? -1 : failIndex - 1),
    'f': () => inDetail && gotoFailure(0),
    'Enter': () => { if (!inDetail && state.sel >= 0) { const r = state.rows[state.page * PAGE + state.sel]; if (r) openRollout(r.i, false); } },
    'Escape': () => { if (inDetail) $('back').click(); },
  }[e.key];
  if (act) { e.preventDefault(); act(); }
});
function route(){
  const hash = decodeURIComponent(location.hash);
  let m = /^#r(\d+)(?:\/(f|c\/(.+)))?$/.exec(hash);
  if (m && ROLL[Number(m[1])]) { const i = Number(m[1]);
    if (current !== i) openRollout(i, m[2] === 'f', m[3]); else if (m[3]) gotoCall(m[3]); return; }
  m = /^#t\/(\d+)\/(\d+)\/(.+)$/.exec(hash);
  if (m) { const r = ROLL.find(o => o.run === Number(m[1]) && o.rep === Number(m[2]) && o.task === m[3]); if (r) { openRollout(r.i, false); return; } }
  m = /^#list\?(.*)$/.exec(location.hash);
  if (m) { listFromHash(m[1]); showList(); return; }
  showList();
}
window.addEventListener('popstate', route);
