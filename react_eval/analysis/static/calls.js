// calls: each tool call in its own form (bash as code, edits as diffs, other tools as key/value
// tables), observations folded with the harness's truncation marked, unified diffs coloured.
const SANDBOX_TOOLS = new Set(['bash', 'file_read', 'file_write', 'str_replace_editor']);
const CUT_MARK = /\n*\[\.\.\. [0-9,]+ characters truncated \.\.\.\]\n*/;

// ---- LCS alignment of two sequences (lines of a file, turns of two rollouts); a plain
// replace when they are too long to align
function lcsOps(x, y){
  const n = x.length, m = y.length;
  if (n * m > 4e6) return [...x.map(t => ['-', t]), ...y.map(t => ['+', t])];
  const w = m + 1, dp = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    dp[i * w + j] = x[i] === y[j] ? dp[(i + 1) * w + j + 1] + 1 : Math.max(dp[(i + 1) * w + j], dp[i * w + j + 1]);
  const out = []; let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i], i++, j++]); }
    else if (dp[(i + 1) * w + j] >= dp[i * w + j + 1]) { out.push(['-', x[i], i++, null]); }
    else { out.push(['+', y[j], null, j++]); }
  }
  while (i < n) out.push(['-', x[i], i++, null]);
  while (j < m) out.push(['+', y[j], null, j++]);
  return out;
}
const lineDiff = (a, b) => lcsOps(a.split('\n'), b.split('\n'));
function hunks(ops, context){
  const keep = ops.map(() => false);
  ops.forEach((op, k) => { if (op[0] !== ' ') for (let d = -context; d <= context; d++) if (ops[k + d]) keep[k + d] = true; });
  const lines = []; let gap = false;
  ops.forEach((op, k) => {
    if (!keep[k]) { gap = true; return; }
    if (gap && lines.length) lines.push(['@', '…']);
    gap = false; lines.push(op);
  });
  return lines;
}
function diffBlock(lines, title){
  const pre = el('pre', {class: 'diff'});
  if (title) pre.append(el('span', {class: 'd-file', text: title}));
  let add = 0, del = 0;
  for (const [op, text] of lines) {
    if (op === '+') add++; else if (op === '-') del++;
    pre.append(el('span', {class: op === '+' ? 'd-add' : op === '-' ? 'd-del' : op === '@' ? 'd-hunk' : null, text: (op === '@' ? '' : op) + text}));
  }
  pre.dataset.add = add; pre.dataset.del = del;
  return pre;
}
function unifiedDiff(text){  // a git patch as coloured lines
  const pre = el('pre', {class: 'diff'});
  for (const line of text.replace(/\n$/, '').split('\n')) {
    let cls = null;
    if (line.startsWith('diff --git')) cls = 'd-file';
    else if (line.startsWith('+++') || line.startsWith('---') || line.startsWith('index ') || line.startsWith('new file') || line.startsWith('deleted file')) cls = 'd-meta';
    else if (line.startsWith('@@')) cls = 'd-hunk';
    else if (line.startsWith('+')) cls = 'd-add';
    else if (line.startsWith('-')) cls = 'd-del';
    pre.append(el('span', {class: cls, text: line}));
  }
  return pre;
}

// ---- folded text: long outputs show their head and tail, the middle behind a button;
// the harness's own cut ("[... N characters truncated ...]") is always marked
const HEAD_LINES = 16, TAIL_LINES = 8;
function fillMarked(pre, t){
  const parts = t.split(CUT_MARK), marks = t.match(new RegExp(CUT_MARK, 'g')) || [];
  parts.forEach((part, k) => { pre.append(part); if (marks[k]) pre.append(el('span', {class: 'cut', text: marks[k].trim() + ' (cut by the harness)'})); });
}
function folded(text, cls){
  const lines = text.split('\n');
  const pre = el('pre', {class: (cls ? cls + ' ' : '') + 'folded'});
  if (text.length <= OBS_LIMIT && lines.length <= OBS_LINES) { fillMarked(pre, text); return pre; }
  let head = lines.slice(0, HEAD_LINES).join('\n'), tail = lines.slice(-TAIL_LINES).join('\n');
  if (lines.length <= HEAD_LINES + TAIL_LINES) { head = text.slice(0, OBS_LIMIT / 2); tail = text.slice(-OBS_LIMIT / 2); }
  if (head.length > OBS_LIMIT / 2) head = head.slice(0, OBS_LIMIT / 2);
  if (tail.length > OBS_LIMIT / 2) tail = tail.slice(-OBS_LIMIT / 2);
  const hidden = text.length - head.length - tail.length;
  const cut = CUT_MARK.exec(text.slice(head.length, text.length - tail.length));
  const more = el('button', {type: 'button', class: 'more unfold',
    text: `⋯ show ${hidden} more characters (${lines.length} lines in all)` + (cut ? ' — the harness cut the output here' : ''),
    onclick: () => { pre.replaceChildren(); fillMarked(pre, text); }});
  fillMarked(pre, head); pre.append('\n', more, '\n'); fillMarked(pre, tail);
  return pre;
}
function kvTable(obj){
  const table = el('table', {class: 'kv'});
  for (const [k, v] of Object.entries(obj)) {
    let cell;
    if (typeof v === 'string' && (v.includes('\n') || v.length > 120)) cell = folded(v);
    else if (v !== null && typeof v === 'object') cell = el('pre', {text: pretty(v)});
    else cell = JSON.stringify(v);
    table.append(el('tr', null, el('th', {text: k}), el('td', null, cell)));
  }
  return table;
}

// ---- arguments in their own form; ctx.files remembers what the agent saw of each file
function renderArgs(call, ctx){
  const a = call.arguments || {}, name = call.function_name, cx = call.extra || {};
  if (cx.parse_error) return el('div', null, el('div', {class: 'event ev-error', text: 'arguments are not valid JSON: ' + cx.parse_error}),
    el('pre', {text: cx.arguments_raw || ''}));
  if (typeof a !== 'object' || Array.isArray(a)) return el('pre', {text: pretty(a)});
  const rest = (skip) => { const r = {}; for (const [k, v] of Object.entries(a)) if (!skip.includes(k)) r[k] = v; return Object.keys(r).length ? kvTable(r) : null; };
  if (name === 'bash' && typeof a.command === 'string') {
    const pre = el('pre', {class: 'code'}, el('span', {class: 'prompt', text: '$ '}), a.command);
    return el('div', null, pre, rest(['command']));
  }
  if (name === 'file_write' && typeof a.path === 'string' && typeof a.content === 'string') {
    const before = ctx.files.get(a.path);
    ctx.files.set(a.path, a.content);
    if (before === undefined) return diffBlock(a.content.replace(/\n$/, '').split('\n').map(t => ['+', t]), `${a.path} (written; earlier content not seen)`);
    return diffBlock(hunks(lineDiff(before, a.content), 3), `${a.path} (rewritten)`);
  }
  if (name === 'file_read' && typeof a.path === 'string') {
    ctx.lastRead = (a.start_line || a.end_line) ? null : a.path;
    const range = (a.start_line || a.end_line) ? ` lines ${a.start_line || 1}–${a.end_line && a.end_line !== -1 ? a.end_line : 'end'}` : '';
    return el('div', null, 'read ', el('span', {class: 'path', text: a.path}), range);
  }
  if (name === 'str_replace_editor' && typeof a.command === 'string') {
    const path = el('span', {class: 'path', text: a.path || '?'});
    if (a.command === 'str_replace') return diffBlock(lineDiff(a.old_str || '', a.new_str || ''), `${a.path} (str_replace)`);
    if (a.command === 'create') { ctx.files.set(a.path, a.file_text || ''); return diffBlock((a.file_text || '').replace(/\n$/, '').split('\n').map(t => ['+', t]), `${a.path} (create)`); }
    if (a.command === 'insert') return diffBlock([['@', ` after line ${a.insert_line}`], ...(a.new_str || '').replace(/\n$/, '').split('\n').map(t => ['+', t])], `${a.path} (insert)`);
    if (a.command === 'view') return el('div', null, 'view ', path, a.view_range ? ` lines ${a.view_range[0]}–${a.view_range[1]}` : '');
    return el('div', null, a.command + ' ', path);
  }
  return Object.keys(a).length ? kvTable(a) : el('div', {class: 'empty', text: '(no arguments)'});
}
function renderObservation(call, obs, ox, ctx){
  const content = textOf(obs.content);
  if (call.function_name === 'file_read' && ctx.lastRead && !ox.is_error && !ox.truncated) ctx.files.set(ctx.lastRead, content);
  ctx.lastRead = null;
  let body;
  if (!SANDBOX_TOOLS.has(call.function_name) && /^\s*[{[]/.test(content)) {
    try { const parsed = JSON.parse(content); if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = kvTable(parsed); } catch (e) { /* not JSON */ }
  }
  const title = `output (${content.length} characters${ox.truncated ? ', cut by the harness' : ''})`;
  return el('details', {open: true, class: 'obs'}, el('summary', {text: title}), body || folded(content));
}

// ---- verification: a table, logs collapsed, per-test outcomes coloured
const LOG_KEYS = new Set(['test_output', 'apply_output', 'stdout', 'stderr', 'log', 'output']);
function testTable(title, split, tests){
  const table = el('table', {class: 'kv'});
  const rows = [...(split.failed || []).map(t => [t, (tests && tests[t]) || 'failed']), ...(split.passed || []).map(t => [t, 'passed'])];
  for (const [t, o] of rows) table.append(el('tr', null, el('td', {text: t}), el('td', {class: 't-' + o, text: o})));
  const failed = (split.failed || []).length;
  return el('details', {open: failed > 0}, el('summary', {text: `${title}: ${rows.length - failed}/${rows.length} passed`}), table);
}
function renderVerification(v){
  const box = el('div', {class: 'verification'});
  const table = el('table', {class: 'kv'});
  const logs = [];
  for (const [k, val] of Object.entries(v)) {
    if (k === 'patch' || k === 'tests' || k === 'fail_to_pass' || k === 'pass_to_pass') continue;
    if (typeof val === 'string' && (LOG_KEYS.has(k) || val.includes('\n'))) { logs.push([k, val]); continue; }
    table.append(el('tr', null, el('th', {text: k}), el('td', null, val !== null && typeof val === 'object' ? el('pre', {text: pretty(val)}) : String(val))));
  }
  box.append(table);
  if (v.fail_to_pass) box.append(testTable('FAIL_TO_PASS', v.fail_to_pass, v.tests));
  if (v.pass_to_pass) box.append(testTable('PASS_TO_PASS', v.pass_to_pass, v.tests));
  for (const [k, val] of logs) box.append(el('details', {class: 'log'}, el('summary', {text: `${k.replace(/_/g, ' ')} (${val.split('\n').length} lines)`}), el('pre', {text: val})));
  return box;
}
