"""``react-eval view RUN_DIR [OTHER_RUN_DIR]``: a static HTML trajectory viewer.

Layout of the output directory:

* ``index.html`` -- the whole viewer: its CSS and JavaScript (package data in
  ``analysis/static/``, inlined), and one summary per rollout (task, repeat,
  outcome, why it failed, first failing call, ...) embedded as JSON, enough to
  filter, sort and page through thousands of rollouts without loading any
  trajectory;
* ``chunks/r<run>/<n>.js`` -- one file per rollout holding its result row and
  its ATIF trajectory, wrapped as ``reactEvalChunk(n, {...})``. The page loads
  a chunk with a ``<script>`` element when the rollout is opened: unlike
  ``fetch`` of JSON, that works from ``file://``, so the directory can be opened
  straight from disk; ``--serve`` serves it over HTTP instead;
* ``search/r<run>.js`` -- the full-text index (arguments and outputs), loaded
  the first time the user searches.

Nothing refers to the network. With two runs the pairing is ``compare``'s:
runs of different benchmarks are refused, every task is labelled fixed,
broken, improved, regressed, flaky or same, and a rollout opens beside the
same task and repeat of the other run with the turns aligned.
"""

from __future__ import annotations

import functools
import http.server
import re
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import orjson

from react_eval.analysis.compare import CompareError, check_same_benchmark, compare_runs, task_categories
from react_eval.analysis.runs import RunData, RunLoadError, load_run, trajectory_key
from react_eval.analysis.viewer_index import result_payload, search_text, summary

PAGE_SIZE = 100
_CHUNK_FILE = re.compile(r"^\d+\.js$")
#: the viewer's scripts, in the order they are inlined (one scope)
SCRIPTS = ("core.js", "calls.js", "list.js", "detail.js", "compare.js", "start.js")


def static_text(name: str) -> str:
    """A file of the viewer's package data (``react_eval/analysis/static``)."""
    return resources.files("react_eval.analysis").joinpath("static", name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element (no '<' at all)."""
    return orjson.dumps(data).decode().replace("<", "\\u003c")


def _clear(directory: Path, pattern: re.Pattern[str]) -> None:
    if directory.is_dir():
        for path in directory.iterdir():
            if pattern.match(path.name):
                path.unlink()


def _comparison(runs: list[RunData]) -> dict[str, Any] | None:
    """compare's verdict and per-task categories, for the compare bar and filters."""
    base, cand = runs
    try:
        check_same_benchmark(base, cand)
    except CompareError as exc:
        raise RunLoadError(f"cannot view these runs side by side: {exc}") from None
    try:
        c = compare_runs(base, cand, allow_partial=True, resamples=2000, permutations=2000)
    except CompareError as exc:
        return {"counts": {}, "categories": {}, "warnings": [str(exc)], "base_pass_rate": 0.0, "cand_pass_rate": 0.0,
                "delta": 0.0, "test": "no test", "p_value": 1.0, "paired_tasks": 0}
    categories = task_categories(c, base.task_ids | cand.task_ids)
    counts: dict[str, int] = {}
    for cat in categories.values():
        counts[cat] = counts.get(cat, 0) + 1
    return {"counts": counts, "categories": categories, "warnings": c.warnings, "base_pass_rate": c.base_pass_rate,
            "cand_pass_rate": c.cand_pass_rate, "delta": c.delta, "test": c.test["name"].replace("_", " "),
            "p_value": c.test["p_value"], "paired_tasks": c.paired_tasks}


def write_viewer(run_dirs: list[Path], out_dir: Path | None = None, *, bench: str | None = None,
                 page_size: int = PAGE_SIZE) -> Path:
    """Write the viewer for one or two runs; returns the path of index.html."""
    if not 1 <= len(run_dirs) <= 2:
        raise ValueError("give one run, or two to compare side by side")
    runs = [load_run(Path(d), bench) for d in run_dirs]
    compare = _comparison(runs) if len(runs) == 2 else None
    if out_dir is None:
        out_dir = runs[0].path / ("viewer" if len(runs) == 1 else "viewer-compare")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: list[dict[str, Any]] = []
    run_meta = []
    search_files = []
    for run_index, run in enumerate(runs):
        chunk_dir = out_dir / "chunks" / f"r{run_index}"
        chunk_dir.mkdir(parents=True, exist_ok=True)
        _clear(chunk_dir, _CHUNK_FILE)
        rows, texts = _write_run_chunks(run, run_index, chunk_dir, len(summaries))
        if compare is not None:
            for row in rows:
                row["cat"] = compare["categories"].get(row["task"], "unpaired")
        summaries.extend(rows)
        search_dir = out_dir / "search"
        search_dir.mkdir(exist_ok=True)
        name = f"search/r{run_index}.js"
        (out_dir / name).write_text(f"reactEvalSearch({_json_for_script({str(k): v for k, v in texts.items()})});\n", encoding="utf-8")
        search_files.append(name)
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
    if compare is not None:
        compare.pop("categories")
    data = {"runs": run_meta, "rollouts": summaries, "pageSize": page_size, "search": search_files,
            "compare": compare}
    title = " vs ".join(f"{m['benchmark']} ({m['model'] or '?'})" for m in run_meta)
    index = out_dir / "index.html"
    index.write_text(render_page(data, f"react-eval viewer: {title}"), encoding="utf-8")
    return index


def render_page(data: dict[str, Any], title: str) -> str:
    script = "(function(){\n'use strict';\n" + "\n".join(static_text(name) for name in SCRIPTS) + "\n})();\n"
    page = static_text("viewer.html")
    # one pass, so that nothing inserted is itself searched for placeholders
    parts = {"/*__CSS__*/": static_text("viewer.css"), "/*__JS__*/": script, "__DATA__": _json_for_script(data),
             "__TITLE__": _html_text(title)}
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], page)


def _write_run_chunks(run: RunData, run_index: int, chunk_dir: Path,
                      start: int) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Stream the trajectories once, writing one chunk per rollout; returns the
    summaries and each rollout's search text."""
    positions = {(str(r["task_id"]), int(r.get("repeat", 0))): n for n, r in enumerate(run.rows)}
    summaries: list[dict[str, Any] | None] = [None] * len(run.rows)
    texts: dict[int, str] = {}

    def emit(n: int, trajectory: dict[str, Any] | None) -> None:
        row = run.rows[n]
        index = start + n
        name = f"{index}.js"
        chunk = {"result": result_payload(row), "trajectory": trajectory}
        (chunk_dir / name).write_text(f"reactEvalChunk({index},{_json_for_script(chunk)});\n", encoding="utf-8")
        summaries[n] = summary(index, run_index, row, trajectory, f"chunks/r{run_index}/{name}")
        texts[index] = search_text(row, trajectory)

    for trajectory in run.trajectories():
        key = trajectory_key(trajectory)
        n = positions.get(key) if key is not None else None
        if n is None or summaries[n] is not None:
            continue
        emit(n, trajectory)
    for n, done in enumerate(summaries):
        if done is None:
            emit(n, None)
    return [s for s in summaries if s is not None], texts


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
