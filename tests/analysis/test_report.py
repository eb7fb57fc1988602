"""``report``: report.md and a self-contained report.html."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from react_eval.analysis import charts
from react_eval.analysis.report import tool_breakdown, write_report
from react_eval.analysis.runs import RunLoadError, load_run
from tests.analysis.synth import INFRA, F, P, write_run

# a reference to anything fetched over the network: scripts, styles, images, frames, fonts
REMOTE_ASSET = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*\b(src|href|data)\s*=\s*[\"']?\s*(https?:)?//",
    re.I,
)
CSS_REMOTE = re.compile(r"(@import|url\()\s*[\"']?\s*(https?:)?//", re.I)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "synth", {
        "alpha": [P(), P(), P()],
        "beta": [P(), F(), F(fail=("str_replace_editor", None, "tool_error"))],
        "gamma": [F(), F(), INFRA()],
        "delta": [F(), INFRA("sandbox_error"), P()],
    })


def test_report_files_and_content(run_dir):
    md_path, html_path = write_report(run_dir)
    assert md_path == run_dir / "report.md" and html_path == run_dir / "report.html"
    md = md_path.read_text()
    page = html_path.read_text()

    # the headline table, with the infrastructure failures counted apart
    assert "## Headline" in md and "| metric | value |" in md
    assert "| rollouts | 12 |" in md and "| scored rollouts | 10 |" in md
    assert "| infrastructure failures (excluded) | 2 (model_error=1, sandbox_error=1) |" in md
    # pass@1 over scored rollouts: alpha 3/3, beta 1/3, gamma 0/2, delta 1/2
    assert f"| pass@1 | {(1 + 1 / 3 + 0 + 0.5) / 4:.4f} [" in md
    assert "| pass@2 |" in md and "| pass@3 |" not in md  # gamma and delta have two scored attempts
    assert "pass only sometimes: beta, delta." in md
    assert "| bash | " in md and "| str_replace_editor | 1 | 1 | 100.0% |" in md
    # how rollouts ended: "completed" (never "ok") splits into passed and failed
    assert "| model_error | 1 |" in md and "| passed | 5 |" in md and "| failed (completed) | 5 |" in md
    assert "| ok |" not in md and ">ok<" not in page

    # self-contained: inline SVG charts, no external assets of any kind
    assert page.count("<svg") >= 8
    # readable chart text: nothing under 9.5 SVG points (about 12.7 CSS px at natural size)
    sizes = [float(x) for x in re.findall(r"font-size: ([0-9.]+)px", page)]
    assert sizes and min(sizes) >= charts.MIN_FONT_PT
    # heatmap cells and table rows open the viewer written next to the report
    assert page.count('<a xlink:href="viewer/index.html#t/0/') == 12
    assert '<a href="viewer/index.html#list?tool=f%3Abash">4</a>' in page
    assert '<a href="viewer/index.html#list?kind=model_error">model_error</a>' in page
    assert (run_dir / "viewer" / "index.html").is_file()
    for chart in ("pass_at_k", "heatmap", "hist_turns", "hist_wall", "hist_tokens", "tool_errors_by_tool",
                  "tool_errors_by_turn", "error_kinds"):
        assert f'data-chart="{chart}"' in page, chart
    assert not REMOTE_ASSET.search(page)
    assert not CSS_REMOTE.search(page)
    assert "<script" not in page  # nothing to run either
    # pass@k confidence intervals as error bars, not overlapping translucent bands
    heat = page[page.index('data-chart="pass_at_k"'):]
    assert "fill-opacity" not in heat[: heat.index("</svg>")]
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_tool_breakdown_known_counts(run_dir):
    tb = tool_breakdown(load_run(run_dir))
    # scored rollouts only: 10 trajectories; each lists files with bash on turn 1;
    # the failed ones (beta x2, gamma x2, delta x1) fail a call on turn 2
    assert tb.trajectories == 10
    assert tb.by_tool["bash"]["calls"] == 10 + 4 and tb.by_tool["bash"]["errors"] == 4
    assert tb.by_tool["bash"]["exit_codes"] == {"1": 4}
    assert tb.by_tool["str_replace_editor"]["error_kinds"] == {"tool_error": 1}
    assert tb.by_turn == {1: {"calls": 10, "errors": 0}, 2: {"calls": 5, "errors": 5}}
    assert tb.first_failure_by_tool == {"bash": 4, "str_replace_editor": 1}


def test_report_without_trajectories_uses_row_counts(tmp_path):
    run = write_run(tmp_path / "bare", {"a": [P(), F()]}, trajectories=False)
    md_path, html_path = write_report(run, out_dir=tmp_path / "out")
    assert md_path.parent == tmp_path / "out"
    assert "From 0 trajectories" in md_path.read_text()


def test_report_cli_over_a_run_directory(tmp_path):
    from typer.testing import CliRunner

    from react_eval.cli import app

    write_run(tmp_path / "run" / "synth", {"a": [P(), F()], "b": [P(), P()]})
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "synth" / "report.html").is_file()
    assert "report.md" in result.stdout
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "empty-does-not-exist")])
    assert missing.exit_code == 2


def test_load_run_picks_the_benchmark(tmp_path):
    write_run(tmp_path / "run" / "one", {"a": [P()]})
    write_run(tmp_path / "run" / "two", {"a": [F()]})
    with pytest.raises(RunLoadError, match="several benchmarks"):
        load_run(tmp_path / "run")
    assert load_run(tmp_path / "run", "two").path.name == "two"
    assert load_run(tmp_path / "run" / "one").rows[0]["passed"] is True


def test_empty_charts_are_named_not_drawn(tmp_path):
    # no cached tokens and no failing tool call anywhere: those charts would be all zero
    run = write_run(tmp_path / "plain", {"a": [P(cached_tokens=0), P(cached_tokens=0)],
                                         "b": [F(fail=None, cached_tokens=0), P(cached_tokens=0)]})
    md_path, html_path = write_report(run)
    page = html_path.read_text()
    assert 'data-chart="hist_cached"' not in page and 'data-chart="tool_errors_by_turn"' not in page
    assert 'data-chart="hist_turns"' in page
    assert "Not drawn, all zero: cached tokens." in md_path.read_text()
    assert charts.histogram([0, 0.0, None], name="x", title="x", xlabel="x") is None
    assert charts.tool_errors_by_turn({1: {"calls": 3, "errors": 0}}) is None
