"""``react-eval view RUN_DIR [OTHER_RUN_DIR]``: a static HTML trajectory viewer.

Layout of the output directory:

* ``index.html`` -- the whole viewer: inline CSS and JavaScript, and one
  summary per rollout (task, repeat, reward, outcome, first failing tool call,
  ...) embedded as JSON, enough to filter and page through thousands of
  rollouts without loading any trajectory;
* ``chunks/r<run>/<n>.js`` -- one file per rollout holding its result row and
  its ATIF trajectory, wrapped as ``reactEvalChunk(n, {...})``. The page loads
  a chunk with a ``<script>`` element when the rollout is opened: unlike
  ``fetch`` of JSON, that works from ``file://``, so the directory can be opened
  straight from disk; ``--serve`` serves it over HTTP instead.

Nothing refers to the network. With two runs, opening a rollout shows the
same task of the other run beside it.
"""

from __future__ import annotations

import functools
import http.server
import re
from pathlib import Path
from typing import Any, Callable

import orjson

from react_eval.analysis.runs import RunData, load_run, tool_call_records, trajectory_key
from react_eval.metrics import INFRA_KINDS

PAGE_SIZE = 100
#: longer artifacts (patches) are cut in the chunk files
ARTIFACT_LIMIT = 200_000
_CHUNK_FILE = re.compile(r"^\d+\.js$")


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element (no '<' at all)."""
    return orjson.dumps(data).decode().replace("<", "\\u003c")


def _first_failure(trajectory: dict[str, Any] | None, row: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The first failing tool call and the names of every tool that failed."""
    if trajectory is None:
        failure = row.get("first_tool_failure")
        if failure:
            keep = {k: failure.get(k) for k in ("tool", "turn", "exit_code", "error_kind")}
            return keep, [str(failure.get("tool"))]
        return None, []
    first = None
    failed: list[str] = []
    for call in tool_call_records(trajectory):
        if not call["is_error"]:
            continue
        if first is None:
            first = {k: call[k] for k in ("tool", "turn", "exit_code", "error_kind", "step_id", "call_id")}
        if call["tool"] not in failed:
            failed.append(str(call["tool"]))
    return first, failed


def _outcome(row: dict[str, Any]) -> str:
    if row.get("error_kind") in INFRA_KINDS:
        return "infra"
    return "pass" if row.get("passed") else "fail"


def _summary(index: int, run_index: int, row: dict[str, Any], trajectory: dict[str, Any] | None,
             chunk: str) -> dict[str, Any]:
    first, failed = _first_failure(trajectory, row)
    return {
        "i": index,
        "run": run_index,
        "task": str(row["task_id"]),
        "rep": int(row.get("repeat", 0)),
        "reward": row.get("reward"),
        "passed": bool(row.get("passed")),
        "outcome": _outcome(row),
        "ek": row.get("error_kind"),
        "turns": row.get("turns", 0),
        "tc": row.get("tool_calls", 0),
        "te": row.get("tool_errors", 0),
        "ff": first,
        "ft": failed,
        "tok": (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0),
        "cached": row.get("cached_tokens") or 0,
        "wall": row.get("wall_ms") or 0,
        "traj": trajectory is not None,
        "chunk": chunk,
    }


def _result_payload(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("task_id", "repeat", "rollout_id", "run_id", "model", "reward", "passed", "error_kind", "error",
            "turns", "tool_calls", "tool_errors", "prompt_tokens", "completion_tokens", "cached_tokens",
            "reasoning_tokens", "model_latency_ms", "tool_latency_ms", "wall_ms", "started_at", "finished_at",
            "final_message", "verification")
    payload = {k: row.get(k) for k in keep}
    artifact = row.get("artifact")
    if artifact is not None and len(artifact) > ARTIFACT_LIMIT:
        artifact = artifact[:ARTIFACT_LIMIT] + f"\n[... {len(artifact) - ARTIFACT_LIMIT} more characters cut]"
    payload["artifact"] = artifact
    return payload


def _clear_chunks(directory: Path) -> None:
    if directory.is_dir():
        for path in directory.iterdir():
            if _CHUNK_FILE.match(path.name):
                path.unlink()


def write_viewer(run_dirs: list[Path], out_dir: Path | None = None, *, bench: str | None = None,
                 page_size: int = PAGE_SIZE) -> Path:
    """Write the viewer for one or two runs; returns the path of index.html."""
    if not 1 <= len(run_dirs) <= 2:
        raise ValueError("give one run, or two to compare side by side")
    runs = [load_run(Path(d), bench) for d in run_dirs]
    if out_dir is None:
        out_dir = runs[0].path / ("viewer" if len(runs) == 1 else "viewer-compare")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: list[dict[str, Any]] = []
    run_meta = []
    for run_index, run in enumerate(runs):
        chunk_dir = out_dir / "chunks" / f"r{run_index}"
        chunk_dir.mkdir(parents=True, exist_ok=True)
        _clear_chunks(chunk_dir)
        summaries.extend(_write_run_chunks(run, run_index, chunk_dir, len(summaries)))
        scored = run.scored_rows
        run_meta.append({
            "label": "ABCDEFGH"[run_index],
            "path": str(run.path),
            "benchmark": run.benchmark,
            "model": run.model,
            "run_id": run.run_id,
            "rollouts": len(run.rows),
            "scored": len(scored),
            "passed": sum(bool(r.get("passed")) for r in scored),
            "infra": len(run.rows) - len(scored),
        })
    data = {"runs": run_meta, "rollouts": summaries, "pageSize": page_size}
    page = _PAGE.replace("/*__CSS__*/", _CSS).replace("/*__JS__*/", _JS).replace("__DATA__", _json_for_script(data))
    title = " vs ".join(f"{m['benchmark']} ({m['model'] or '?'})" for m in run_meta)
    page = page.replace("__TITLE__", _html_text(f"react-eval viewer: {title}"))
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _write_run_chunks(run: RunData, run_index: int, chunk_dir: Path, start: int) -> list[dict[str, Any]]:
    """Stream the trajectories once, writing one chunk per rollout."""
    positions = {(str(r["task_id"]), int(r.get("repeat", 0))): n for n, r in enumerate(run.rows)}
    summaries: list[dict[str, Any] | None] = [None] * len(run.rows)

    def emit(n: int, trajectory: dict[str, Any] | None) -> None:
        row = run.rows[n]
        index = start + n
        name = f"{index}.js"
        chunk = {"result": _result_payload(row), "trajectory": trajectory}
        (chunk_dir / name).write_text(f"reactEvalChunk({index},{_json_for_script(chunk)});\n", encoding="utf-8")
        summaries[n] = _summary(index, run_index, row, trajectory, f"chunks/r{run_index}/{name}")

    for trajectory in run.trajectories():
        key = trajectory_key(trajectory)
        n = positions.get(key) if key is not None else None
        if n is None or summaries[n] is not None:
            continue
        emit(n, trajectory)
    for n, done in enumerate(summaries):
        if done is None:
            emit(n, None)
    return [s for s in summaries if s is not None]


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_server(directory: Path, *, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``directory`` (port 0: any free port); call serve_forever()."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve(directory: Path, *, host: str = "127.0.0.1", port: int = 8765,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve ``directory`` over HTTP until interrupted."""
    with make_server(directory, host=host, port=port) as server:
        url = f"http://{host}:{server.server_address[1]}/index.html"
        if ready:
            ready(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


# ---------------------------------------------------------------- the page

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>/*__CSS__*/</style>
</head><body>
<header><h1>react-eval trajectories</h1><div id="runs"></div></header>
<main>
<section id="list-view">
  <form id="filters" onsubmit="return false">
    <label>run <select id="f-run"></select></label>
    <label>reward <select id="f-reward"></select></label>
    <label>error kind <select id="f-kind"></select></label>
    <label>failed tool <select id="f-tool"></select></label>
    <label>task <input id="f-task" type="search" placeholder="task id contains"></label>
    <button type="button" id="f-reset">reset</button>
  </form>
  <div class="pager"><button type="button" id="prev">&larr; prev</button>
    <span id="page-info"></span><button type="button" id="next">next &rarr;</button></div>
  <table id="rollouts"><thead><tr>
    <th>run</th><th>task</th><th>repeat</th><th>reward</th><th>outcome</th><th>error kind</th>
    <th>turns</th><th>tool calls</th><th>failed calls</th><th>first failing call</th><th>tokens</th><th>wall s</th>
  </tr></thead><tbody></tbody></table>
</section>
<section id="detail-view" hidden>
  <div class="detail-bar"><button type="button" id="back">&larr; back to list</button>
    <span id="detail-title"></span></div>
  <div id="panes"></div>
</section>
</main>
<script id="re-data" type="application/json">__DATA__</script>
<script>/*__JS__*/</script>
</body></html>
"""

_CSS = r"""
*{box-sizing:border-box} [hidden]{display:none !important}
body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d1f23;background:#f4f5f7}
header{background:#20242c;color:#fff;padding:10px 18px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:17px;margin:0} #runs{font-size:12px;color:#c9ced6} #runs b{color:#fff}
main{padding:12px 18px}
#filters{display:flex;gap:12px;flex-wrap:wrap;align-items:center;margin-bottom:8px}
#filters label{font-size:12px;color:#4b515b;display:flex;gap:4px;align-items:center}
select,input,button{font:inherit;font-size:13px;padding:3px 6px;border:1px solid #c4c9d1;border-radius:4px;background:#fff}
button{cursor:pointer} button:hover{background:#eef2f8}
.pager{display:flex;gap:10px;align-items:center;margin:6px 0}
table#rollouts{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
#rollouts th,#rollouts td{border-bottom:1px solid #e3e6ea;padding:4px 8px;text-align:left;white-space:nowrap}
#rollouts th{background:#eceff3;position:sticky;top:0}
#rollouts tbody tr{cursor:pointer} #rollouts tbody tr:hover{background:#f0f5ff}
.o-pass{color:#1e7a43;font-weight:600} .o-fail{color:#b3261e;font-weight:600} .o-infra{color:#6b7280;font-weight:600}
a.fail-link{color:#b3261e;text-decoration:none;border-bottom:1px dotted #b3261e} a.fail-link:hover{background:#fde8e7}
.detail-bar{display:flex;gap:16px;align-items:center;margin-bottom:10px;position:sticky;top:0;background:#f4f5f7;padding:6px 0;z-index:5}
#detail-title{font-weight:600}
#panes{display:grid;gap:14px;grid-template-columns:1fr} #panes.split{grid-template-columns:1fr 1fr}
.pane{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px;min-width:0}
.pane h2{font-size:15px;margin:0 0 6px}
.facts{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:12px;color:#4b515b;margin-bottom:8px}
.facts b{color:#1d1f23}
.jump{background:#fde8e7;border-color:#e9a09b;color:#8c1d18;font-weight:600;margin:4px 0 8px}
.step{border:1px solid #e3e6ea;border-radius:5px;margin:8px 0;padding:6px 9px}
.step.src-system,.step.src-user{background:#f8f9fb}
.step-head{display:flex;gap:10px;flex-wrap:wrap;align-items:baseline;font-size:12px;color:#5b616b}
.step-head .who{font-weight:700;color:#1d1f23;font-size:13px}
.msg{white-space:pre-wrap;word-break:break-word;margin:4px 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #e6e9ed;border-radius:4px;padding:6px 8px;margin:4px 0;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;max-height:480px;overflow:auto}
details>summary{cursor:pointer;font-size:12px;color:#4b515b}
.reasoning pre{background:#fbf8ef;border-color:#efe6c8}
.call{border-left:3px solid #9fb3d9;margin:8px 0 4px;padding:2px 0 2px 9px}
.call.err{border-left-color:#d64541}
.call.first-failure{background:#fff1f0;outline:2px solid #d64541;border-radius:4px;padding:6px 9px}
.call.flash{animation:flash 1.2s ease-out 1}
@keyframes flash{0%{background:#ffc9c5}100%{background:#fff1f0}}
.call-head{display:flex;gap:8px;flex-wrap:wrap;align-items:center;font-size:12px}
.tool-name{font:600 13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;background:#eceff3;color:#39404a}
.badge.bad{background:#fde2e0;color:#8c1d18} .badge.good{background:#ddf3e4;color:#1e6a3b} .badge.warn{background:#fff0c2;color:#6b4f00}
.first-label{font-weight:700;color:#b3261e;font-size:12px}
.event{font-size:12px;color:#6b4f00;background:#fff8e1;border-radius:4px;padding:2px 6px;margin:3px 0}
.more{font-size:12px;margin:2px 0 6px}
.empty{color:#6b7280;font-style:italic}
"""

_JS = r"""
(function(){
'use strict';
const DATA = JSON.parse(document.getElementById('re-data').textContent);
const ROLL = DATA.rollouts, RUNS = DATA.runs, PAGE = DATA.pageSize || 100;
const OBS_LIMIT = 4000;
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids){
  const node = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false)
    node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return node;
}
const fmt = (x, d) => (x === null || x === undefined) ? '-' : (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(d === undefined ? 2 : d)) : String(x));

// ------------------------------------------------------------ header and filters
$('runs').append(...RUNS.map(r => el('span', null, el('b', {text: r.label + ' '}),
  `${r.benchmark} · ${r.model || '?'} · ${r.passed}/${r.scored} passed · ${r.infra} infra · ${r.path}   `)));
function options(select, items){ select.replaceChildren(...items.map(([v, t]) => el('option', {value: v, text: t}))); }
const kinds = [...new Set(ROLL.map(r => r.ek || 'ok'))].sort();
const tools = [...new Set(ROLL.flatMap(r => r.ft))].sort();
const rewards = [...new Set(ROLL.map(r => r.reward).filter(x => x !== null && x !== undefined))].sort((a, b) => a - b);
options($('f-run'), [['', 'all'], ...RUNS.map((r, i) => [String(i), r.label + ': ' + (r.model || r.path)])]);
if (RUNS.length < 2) $('f-run').parentElement.hidden = true;
options($('f-reward'), [['', 'all'], ['pass', 'passed'], ['fail', 'failed (scored)'], ['infra', 'infra failure'],
  ...(rewards.length <= 12 ? rewards.map(x => ['=' + x, 'reward = ' + fmt(x, 3)]) : [])]);
options($('f-kind'), [['', 'any'], ...kinds.map(k => [k, k])]);
options($('f-tool'), [['', 'any'], ['-', '(no failed call)'], ...tools.map(t => [t, t])]);

const state = {page: 0, rows: ROLL};
function filtered(){
  const run = $('f-run').value, reward = $('f-reward').value, kind = $('f-kind').value;
  const tool = $('f-tool').value, task = $('f-task').value.trim().toLowerCase();
  return ROLL.filter(r =>
    (run === '' || String(r.run) === run) &&
    (reward === '' || (reward.startsWith('=') ? r.reward === Number(reward.slice(1)) : r.outcome === reward)) &&
    (kind === '' || (r.ek || 'ok') === kind) &&
    (tool === '' || (tool === '-' ? r.ft.length === 0 : r.ft.includes(tool))) &&
    (task === '' || r.task.toLowerCase().includes(task)));
}
function refilter(){ state.rows = filtered(); state.page = 0; renderList(); }
for (const id of ['f-run', 'f-reward', 'f-kind', 'f-tool']) $(id).addEventListener('change', refilter);
$('f-task').addEventListener('input', refilter);
$('f-reset').addEventListener('click', () => { for (const id of ['f-run', 'f-reward', 'f-kind', 'f-tool', 'f-task']) $(id).value = ''; refilter(); });
$('prev').addEventListener('click', () => { if (state.page > 0) { state.page--; renderList(); } });
$('next').addEventListener('click', () => { if ((state.page + 1) * PAGE < state.rows.length) { state.page++; renderList(); } });

function failText(ff){
  if (!ff) return '';
  let s = ff.tool + ' @ turn ' + ff.turn;
  if (ff.exit_code !== null && ff.exit_code !== undefined) s += ' (exit ' + ff.exit_code + ')';
  else if (ff.error_kind) s += ' (' + ff.error_kind + ')';
  return s;
}
function renderList(){
  const rows = state.rows, start = state.page * PAGE, end = Math.min(rows.length, start + PAGE);
  $('page-info').textContent = rows.length ? `${start + 1}–${end} of ${rows.length}` + (rows.length < ROLL.length ? ` (filtered from ${ROLL.length})` : '') : `0 of ${ROLL.length}`;
  $('prev').disabled = state.page === 0; $('next').disabled = end >= rows.length;
  const body = document.querySelector('#rollouts tbody');
  body.replaceChildren(...rows.slice(start, end).map(r => {
    const link = r.ff ? el('a', {href: '#', class: 'fail-link', title: 'open at the first failing call',
      onclick: (e) => { e.preventDefault(); e.stopPropagation(); openRollout(r.i, true); }}, failText(r.ff)) : '';
    return el('tr', {'data-i': r.i, onclick: () => openRollout(r.i, false)},
      el('td', {text: RUNS[r.run].label}), el('td', {text: r.task}), el('td', {text: r.rep}),
      el('td', {text: fmt(r.reward, 3)}), el('td', {class: 'o-' + r.outcome, text: r.outcome}),
      el('td', {text: r.ek || ''}), el('td', {text: r.turns}), el('td', {text: r.tc}), el('td', {text: r.te}),
      el('td', null, link), el('td', {text: r.tok}), el('td', {text: fmt(r.wall / 1000, 1)}));
  }));
}

// ------------------------------------------------------------ lazy chunks
const cache = new Map(), pending = new Map();
window.reactEvalChunk = function(i, payload){
  cache.set(i, payload);
  const p = pending.get(i); if (p) { pending.delete(i); p.resolve(payload); }
};
window.reactEvalLoaded = () => [...cache.keys()];  // which rollouts were fetched (lazy loading)
function loadChunk(i){
  if (cache.has(i)) return Promise.resolve(cache.get(i));
  if (pending.has(i)) return pending.get(i).promise;
  let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; });
  pending.set(i, {promise, resolve, reject});
  const script = el('script', {src: ROLL[i].chunk});
  script.onerror = () => { pending.delete(i); reject(new Error('could not load ' + ROLL[i].chunk)); };
  script.onload = () => script.remove();
  document.head.append(script);
  return promise;
}

// ------------------------------------------------------------ detail
function counterparts(r){
  return ROLL.filter(o => o.run !== r.run && o.task === r.task).sort((a, b) => a.rep - b.rep);
}
let current = null, pushed = false;
function openRollout(i, jump){
  const r = ROLL[i]; current = i;
  $('list-view').hidden = true; $('detail-view').hidden = false;
  $('detail-title').textContent = `task ${r.task} · repeat ${r.rep}`;
  if (location.hash !== '#r' + i) { history.pushState(null, '', '#r' + i); pushed = true; }
  const panes = $('panes'); panes.replaceChildren();
  const mine = el('div', {class: 'pane'}, el('p', {class: 'empty', text: 'loading…'}));
  let left = mine, right = null;
  if (RUNS.length > 1) {
    const others = counterparts(r);
    const other = others.find(o => o.rep === r.rep) || others[0];
    right = el('div', {class: 'pane'});
    if (r.run > 0) { left = right; right = mine; }
    panes.className = 'split';
    panes.append(left, right);
    const otherPane = r.run > 0 ? left : right;
    if (other) showPane(otherPane, other.i, false, others);
    else otherPane.append(el('p', {class: 'empty', text: 'this task is not in the other run'}));
  } else { panes.className = ''; panes.append(mine); }
  showPane(mine, i, jump, null);
  if (!jump) window.scrollTo(0, 0);
}
function showPane(pane, i, jump, others){
  pane.replaceChildren(el('p', {class: 'empty', text: 'loading…'}));
  loadChunk(i).then(chunk => {
    renderPane(pane, ROLL[i], chunk, others);
    if (jump) jumpToFailure(pane);
  }, err => pane.replaceChildren(el('p', {class: 'empty', text: String(err)})));
}
function jumpToFailure(pane){
  const target = pane.querySelector('.first-failure');
  if (!target) return;
  target.scrollIntoView({block: 'center'});
  target.classList.remove('flash'); void target.offsetWidth; target.classList.add('flash');
}
function badge(text, kind){ return el('span', {class: 'badge' + (kind ? ' ' + kind : ''), text}); }
function pretty(value){ try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); } }
function textOf(message){
  if (message === null || message === undefined) return '';
  if (typeof message === 'string') return message;
  return message.map(p => p.type === 'text' ? p.text : `[${p.type}: ${p.source ? p.source.path : ''}]`).join('\n');
}
function longPre(text, cls){
  const pre = el('pre', {class: cls || null});
  if (text.length <= OBS_LIMIT) { pre.textContent = text; return pre; }
  pre.textContent = text.slice(0, OBS_LIMIT);
  const more = el('button', {type: 'button', class: 'more', text: `show all ${text.length} characters`,
    onclick: () => { pre.textContent = text; more.remove(); }});
  return el('div', null, pre, more);
}
function renderPane(pane, r, chunk, others){
  const res = chunk.result, traj = chunk.trajectory;
  const head = el('h2', null, `${RUNS[r.run].label} · ${RUNS[r.run].model || ''} · task ${r.task} · repeat ${r.rep} `,
    el('span', {class: 'o-' + r.outcome, text: r.outcome}));
  const facts = el('div', {class: 'facts'},
    el('span', null, 'reward ', el('b', {text: fmt(res.reward, 3)})),
    el('span', null, 'error kind ', el('b', {text: res.error_kind || 'none'})),
    el('span', null, 'turns ', el('b', {text: res.turns})),
    el('span', null, 'tool calls ', el('b', {text: `${res.tool_calls} (${res.tool_errors} failed)`})),
    el('span', null, 'tokens ', el('b', {text: `${res.prompt_tokens} prompt / ${res.completion_tokens} completion / ${res.cached_tokens} cached / ${res.reasoning_tokens} reasoning`})),
    el('span', null, 'model ', el('b', {text: fmt(res.model_latency_ms / 1000, 1) + ' s'}),
      ' · tools ', el('b', {text: fmt(res.tool_latency_ms / 1000, 1) + ' s'}),
      ' · wall ', el('b', {text: fmt(res.wall_ms / 1000, 1) + ' s'})));
  pane.replaceChildren(head, facts);
  if (others && others.length > 1) {
    const pick = el('select', {onchange: (e) => showPane(pane, Number(e.target.value), false, others)});
    options(pick, others.map(o => [String(o.i), `repeat ${o.rep} (${o.outcome})`]));
    pick.value = String(r.i);
    pane.append(el('label', {class: 'facts'}, 'other repeat: ', pick));
  }
  if (res.error) pane.append(el('div', {class: 'event', text: 'error: ' + res.error}));
  if (r.ff) pane.append(el('button', {type: 'button', class: 'jump', onclick: () => jumpToFailure(pane)},
    '⚑ first failing call: ' + failText(r.ff)));
  if (!traj) { pane.append(el('p', {class: 'empty', text: 'no trajectory was recorded for this rollout'})); }
  else renderSteps(pane, traj, r);
  const end = el('div', {class: 'step'}, el('div', {class: 'step-head'}, el('span', {class: 'who', text: 'result'})));
  if (res.final_message) end.append(el('div', {class: 'msg', text: res.final_message}));
  if (res.verification && Object.keys(res.verification).length)
    end.append(el('details', {open: true}, el('summary', {text: 'verification'}), el('pre', {text: pretty(res.verification)})));
  if (res.artifact) end.append(el('details', null, el('summary', {text: `artifact (${res.artifact.length} characters)`}), longPre(res.artifact)));
  pane.append(end);
}
function renderSteps(pane, traj, r){
  let turn = 0, firstMarked = false;
  for (const step of traj.steps || []) {
    const src = step.source;
    const box = el('div', {class: 'step src-' + src, 'data-step': step.step_id});
    const head = el('div', {class: 'step-head'});
    box.append(head);
    if (src !== 'agent') {
      head.append(el('span', {class: 'who', text: src}));
      const text = textOf(step.message);
      box.append(src === 'system' ? el('details', null, el('summary', {text: `system prompt (${text.length} characters)`}), longPre(text))
                                  : el('div', {class: 'msg', text}));
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
        const div = el('div', {class: 'call' + (ox.is_error ? ' err' : '') + (isFirst ? ' first-failure' : ''),
                               'data-tool': call.function_name, 'data-turn': turn});
        const ch = el('div', {class: 'call-head'});
        if (isFirst) ch.append(el('span', {class: 'first-label', text: '⚑ first failing call'}));
        ch.append(el('span', {class: 'tool-name', text: call.function_name}));
        if (ox.exit_code !== undefined && ox.exit_code !== null) ch.append(badge('exit ' + ox.exit_code, ox.exit_code === 0 ? 'good' : 'bad'));
        if (ox.is_error) ch.append(badge(ox.error_kind || 'error', 'bad'));
        if (ox.latency_ms !== undefined) ch.append(badge(fmt(ox.latency_ms, 0) + ' ms'));
        if (ox.truncated) ch.append(badge('output truncated', 'warn'));
        if (!obs) ch.append(badge('no observation', 'warn'));
        div.append(ch);
        const cx = call.extra || {};
        if (cx.parse_error) div.append(el('div', {class: 'event', text: 'arguments did not parse: ' + cx.parse_error}), el('pre', {text: cx.arguments_raw || ''}));
        else div.append(el('details', {open: true}, el('summary', {text: 'arguments'}), el('pre', {text: pretty(call.arguments)})));
        if (obs) {
          const content = textOf(obs.content);
          div.append(el('details', {open: true}, el('summary', {text: `observation (${content.length} characters${ox.truncated ? ', truncated by the harness' : ''})`}), longPre(content)));
        }
        box.append(div);
      }
      for (const obs of results.values()) box.append(el('pre', {text: textOf(obs.content)}));
    }
    for (const ev of (step.extra && step.extra.events) || []) {
      const {kind, timestamp, ...rest} = ev;
      box.append(el('div', {class: 'event', text: 'event ' + kind + (Object.keys(rest).length ? ': ' + JSON.stringify(rest) : '')}));
    }
    pane.append(box);
  }
}
function showList(){ $('detail-view').hidden = true; $('list-view').hidden = false; current = null; }
$('back').addEventListener('click', () => {
  if (pushed) { pushed = false; history.back(); }
  else { history.replaceState(null, '', location.pathname + location.search); showList(); }
});
window.addEventListener('popstate', route);
function route(){
  const m = /^#r(\d+)$/.exec(location.hash);
  if (m && ROLL[Number(m[1])]) { if (current !== Number(m[1])) openRollout(Number(m[1]), false); }
  else showList();
}
renderList();
route();
})();
"""
