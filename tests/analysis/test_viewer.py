"""``view``: the static trajectory viewer, on disk and in a real headless Chromium.

The browser tests drive Debian's Chromium (/usr/bin/chromium) through Debian's
chromedriver with Selenium; Selenium Manager is kept offline and never asked to
download a browser or a driver. They skip, with the reason, when Chromium
cannot be started here -- unless REACT_EVAL_REQUIRE_BROWSER=1 (CI), where that
is a failure.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from react_eval.analysis.viewer import make_server, write_viewer
from tests.analysis.browser import js_errors as _js_errors, wait as _wait
from tests.analysis.synth import INFRA, F, P, write_run

REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", re.I)


def _outcomes() -> dict:
    return {
        "alpha": [P(), P()],
        "beta": [P(), F()],  # bash fails with exit 1 on turn 2
        "gamma": [F(fail=("str_replace_editor", None, "tool_error")), INFRA()],
        "</script><b>x": [P(), P()],  # a hostile task id must not break out of the page
    }


@pytest.fixture
def viewer_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run-a", _outcomes())


def _embedded(index: Path) -> dict:
    page = index.read_text()
    match = re.search(r'<script id="re-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "the rollout summaries are embedded in the page"
    return json.loads(match.group(1))


def test_viewer_files(viewer_run):
    index = write_viewer([viewer_run])
    assert index == viewer_run / "viewer" / "index.html"
    page = index.read_text()
    assert not REMOTE.search(page)
    assert "</script><b>x" not in page  # escaped inside the embedded JSON
    data = _embedded(index)
    rollouts = data["rollouts"]
    assert len(rollouts) == 8 and data["pageSize"] == 100
    by_key = {(r["task"], r["rep"]): r for r in rollouts}
    assert by_key[("</script><b>x", 0)]["outcome"] == "pass"
    beta = by_key[("beta", 1)]
    assert beta["outcome"] == "fail" and beta["ft"] == ["bash"]
    assert beta["ff"]["tool"] == "bash" and beta["ff"]["exit_code"] == 1 and beta["ff"]["turn"] == 2
    gamma = by_key[("gamma", 0)]
    assert gamma["ff"]["tool"] == "str_replace_editor" and gamma["ff"]["exit_code"] is None
    assert by_key[("gamma", 1)]["outcome"] == "infra"
    # one lazily loaded chunk per rollout, holding the result row and the ATIF trajectory
    for r in rollouts:
        chunk = index.parent / r["chunk"]
        text = chunk.read_text()
        assert text.startswith(f"reactEvalChunk({r['i']},") and text.rstrip().endswith(");")
    body = json.loads((index.parent / beta["chunk"]).read_text()[len(f"reactEvalChunk({beta['i']},"):-3])
    assert body["trajectory"]["schema_version"].startswith("ATIF-")
    assert body["result"]["task_id"] == "beta" and body["result"]["repeat"] == 1


def test_viewer_rewrite_drops_stale_chunks(viewer_run, tmp_path):
    out = tmp_path / "v"
    write_viewer([viewer_run], out)
    (out / "chunks" / "r0" / "999.js").write_text("stale")
    (out / "chunks" / "r0" / "notes.txt").write_text("mine")
    write_viewer([viewer_run], out)
    assert not (out / "chunks" / "r0" / "999.js").exists()
    assert (out / "chunks" / "r0" / "notes.txt").exists()


def test_view_cli(viewer_run, tmp_path):
    from typer.testing import CliRunner

    from react_eval.cli import app

    other = write_run(tmp_path / "run-b", {"alpha": [P(), P()]})
    result = CliRunner().invoke(app, ["view", str(viewer_run), str(other), "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {tmp_path / 'v' / 'index.html'}"
    data = _embedded(tmp_path / "v" / "index.html")
    assert [r["label"] for r in data["runs"]] == ["A", "B"] and len(data["rollouts"]) == 10
    missing = CliRunner().invoke(app, ["view", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 2 and "no such directory" in missing.stderr


# ---------------------------------------------------------------- the browser


def _search(driver, field, text: str) -> None:
    """Type a search and wait for the full-text index, whose arrival re-renders the list."""
    field.clear()
    field.send_keys(text)
    _wait(driver, lambda d: d.find_element("id", "search-info").text == "searching arguments and outputs too")


def _rows(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#rollouts tbody tr")


def test_failed_rollout_highlights_first_failing_call(browser, viewer_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    index = write_viewer([viewer_run])
    browser.get(index.as_uri())
    _wait(browser, lambda d: len(_rows(d)) == 8)
    assert browser.find_element(By.ID, "page-info").text == "1–8 of 8"

    # filter to failed rollouts
    Select(browser.find_element(By.ID, "f-reward")).select_by_value("fail")
    _wait(browser, lambda d: len(_rows(d)) == 2)
    assert "filtered from 8" in browser.find_element(By.ID, "page-info").text
    outcomes = [row.find_elements(By.TAG_NAME, "td")[4].text for row in _rows(browser)]
    assert outcomes == ["fail", "fail"]

    # open the bash failure
    task = browser.find_element(By.ID, "f-q")
    _search(browser, task, "beta")
    _wait(browser, lambda d: len(_rows(d)) == 1)
    _rows(browser)[0].click()
    highlighted = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".call.first-failure"))
    assert highlighted.get_attribute("data-tool") == "bash" and highlighted.get_attribute("data-turn") == "2"
    assert highlighted.find_element(By.CSS_SELECTOR, ".tool-name").text == "bash"
    badges = [b.text for b in highlighted.find_elements(By.CSS_SELECTOR, ".badge")]
    assert "exit 1" in badges and "nonzero_exit" in badges and "output truncated" in badges
    assert "python solve.py --check" in highlighted.text  # the pretty-printed arguments
    assert len(browser.find_elements(By.CSS_SELECTOR, ".first-failure")) == 1
    # the jump button names the same call and scrolls to it in one click
    jump = browser.find_element(By.CSS_SELECTOR, "button.jump")
    assert "bash @ turn 2 (exit 1)" in jump.text
    browser.execute_script("window.scrollTo(0, 0)")
    jump.click()
    _wait(browser, lambda d: d.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight;", highlighted))
    # turn-by-turn: reasoning is collapsible, tokens and latencies are shown
    assert browser.find_element(By.CSS_SELECTOR, "details.reasoning summary").text.startswith("reasoning (")
    assert "prompt 500" in browser.find_element(By.CSS_SELECTOR, ".src-agent .step-head").text

    # back to the list, which kept its filters; one click on the failure link of another rollout
    browser.find_element(By.ID, "back").click()
    _wait(browser, lambda d: d.find_element(By.ID, "list-view").is_displayed())
    _search(browser, task, "gamma")
    _wait(browser, lambda d: len(_rows(d)) == 1)
    _rows(browser)[0].find_element(By.CSS_SELECTOR, "a.fail-link").click()
    highlighted = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".call.first-failure"))
    assert highlighted.find_element(By.CSS_SELECTOR, ".tool-name").text == "str_replace_editor"
    assert "tool_error" in [b.text for b in highlighted.find_elements(By.CSS_SELECTOR, ".badge")]
    assert _js_errors(browser) == []


def test_filters_by_error_kind_and_failed_tool(browser, viewer_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(write_viewer([viewer_run]).as_uri())
    _wait(browser, lambda d: len(_rows(d)) == 8)
    Select(browser.find_element(By.ID, "f-kind")).select_by_value("model_error")
    _wait(browser, lambda d: len(_rows(d)) == 1)
    Select(browser.find_element(By.ID, "f-kind")).select_by_value("")
    Select(browser.find_element(By.ID, "f-tool")).select_by_value("f:str_replace_editor")
    _wait(browser, lambda d: len(_rows(d)) == 1)
    assert _rows(browser)[0].find_elements(By.TAG_NAME, "td")[1].text == "gamma"
    Select(browser.find_element(By.ID, "f-tool")).select_by_value("-")
    _wait(browser, lambda d: len(_rows(d)) == 6)
    assert _js_errors(browser) == []


def test_two_runs_side_by_side(browser, viewer_run, tmp_path):
    from selenium.webdriver.common.by import By

    other = write_run(tmp_path / "run-b", {"alpha": [F(), P()], "beta": [P(), P()], "gamma": [P(), P()]},
                      model="model-b")
    index = write_viewer([viewer_run, other])
    assert index.parent.name == "viewer-compare"
    browser.get(index.as_uri())
    _wait(browser, lambda d: len(_rows(d)) == 14)
    task = browser.find_element(By.ID, "f-q")
    _search(browser, task, "alpha")
    _wait(browser, lambda d: len(_rows(d)) == 4)
    _rows(browser)[0].click()  # run A, alpha, repeat 0
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#panes.split .pane h2")) == 2)
    heads = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#panes .pane h2")]
    assert heads[0].startswith("A · model-a · task alpha · repeat 0")
    assert heads[1].startswith("B · model-b · task alpha · repeat 0") and heads[1].endswith("fail")
    # the right pane's failing call is highlighted as well
    right = browser.find_elements(By.CSS_SELECTOR, "#panes .aligned .cell[data-side='1'] .first-failure")
    assert [c.find_element(By.CSS_SELECTOR, ".tool-name").text for c in right] == ["bash"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#panes .aligned .cell[data-side='0'] .first-failure")
    assert _js_errors(browser) == []


def test_two_thousand_rollouts_paginate(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    outcomes = {f"task-{i:04d}": [P() if (i + r) % 3 else F() for r in range(5)] for i in range(400)}
    index = write_viewer([write_run(tmp_path / "big", outcomes)])
    assert len(list((index.parent / "chunks" / "r0").glob("*.js"))) == 2000
    browser.get(index.as_uri())
    _wait(browser, lambda d: len(_rows(d)) == 100)
    info = browser.find_element(By.ID, "page-info")
    assert info.text == "1–100 of 2000"
    browser.find_element(By.ID, "next").click()
    _wait(browser, lambda d: d.find_element(By.ID, "page-info").text == "101–200 of 2000")
    assert _rows(browser)[0].find_elements(By.TAG_NAME, "td")[1].text == "task-0020"
    Select(browser.find_element(By.ID, "f-reward")).select_by_value("fail")
    _wait(browser, lambda d: d.find_element(By.ID, "page-info").text.startswith("1–100 of 667"))
    assert browser.execute_script("return window.reactEvalLoaded()") == []  # nothing loaded for the list
    wanted = int(_rows(browser)[5].get_attribute("data-i"))
    _rows(browser)[5].click()
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".first-failure"))
    assert browser.execute_script("return window.reactEvalLoaded()") == [wanted]  # only the opened one
    assert _js_errors(browser) == []


def test_served_over_http(browser, viewer_run):
    from selenium.webdriver.common.by import By

    index = write_viewer([viewer_run])
    server = make_server(index.parent, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/index.html#r3")
        highlighted = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".first-failure"))
        assert "exit 1" in highlighted.text and highlighted.get_attribute("data-tool") == "bash"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_gym_calls_as_key_value_tables(browser, tmp_path):
    """A Gym tool's arguments and a JSON output read as tables, not as escaped JSON."""
    from selenium.webdriver.common.by import By

    run = write_run(tmp_path / "gym", {"t": [F(fail=("lookup_word", None, "tool_error"))]})
    path = run / "trajectories.jsonl"
    trajectory = json.loads(path.read_text())
    for step in trajectory["steps"]:
        for result in (step.get("observation") or {}).get("results") or []:
            if result["source_call_id"] == "c2":
                result["content"] = json.dumps({"word": "apple", "code": 17, "hints": ["fruit", "red"]})
    path.write_text(json.dumps(trajectory) + "\n")
    browser.get(write_viewer([run]).as_uri() + "#r0")
    call = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".call[data-tool='lookup_word']"))
    tables = call.find_elements(By.CSS_SELECTOR, "table.kv")
    assert [th.text for th in tables[0].find_elements(By.TAG_NAME, "th")] == ["path"]
    assert [th.text for th in tables[1].find_elements(By.TAG_NAME, "th")] == ["word", "code", "hints"]
    assert _js_errors(browser) == []


def test_compare_filters_flaky_and_unpaired(browser, tmp_path):
    from selenium.webdriver.common.by import By

    base = write_run(tmp_path / "a", {"wobble": [P(), F(), P()], "up": [F(), F(), P()], "same": [P(), P(), P()]})
    cand = write_run(tmp_path / "b", {"wobble": [F(), P(), P()], "up": [P(), P(), P()], "same": [P(), P(), P()],
                                      "new": [P(), P(), P()]})
    browser.get(write_viewer([base, cand]).as_uri())
    _wait(browser, lambda d: len(_rows(d)) == 21)
    chips = {c.get_attribute("data-cat"): c.text for c in browser.find_elements(By.CSS_SELECTOR, "#compare-bar .chip")}
    assert chips == {"improved": "improved 1", "flaky": "flaky 1", "same": "same 1", "unpaired": "unpaired 1"}
    browser.find_element(By.CSS_SELECTOR, "#compare-bar .chip.c-flaky").click()
    _wait(browser, lambda d: len(_rows(d)) == 6)
    assert {r.find_element(By.CSS_SELECTOR, "td.task").get_attribute("title") for r in _rows(browser)} == {"wobble"}
    assert any("--allow-partial" in w.text for w in browser.find_elements(By.CSS_SELECTOR, "#compare-bar .warn"))
    assert _js_errors(browser) == []


def test_the_page_is_package_data():
    """The HTML, CSS and scripts live in analysis/static, and the wheel's package-data globs ship them."""
    import fnmatch
    import tomllib

    from react_eval.analysis import viewer

    root = Path(viewer.__file__).resolve().parents[2]
    static = root / "react_eval" / "analysis" / "static"
    names = {p.name for p in static.iterdir()}
    assert set(viewer.SCRIPTS) | {"viewer.html", "viewer.css"} <= names
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["react_eval"]
    for name in names:
        assert any(fnmatch.fnmatch(f"analysis/static/{name}", g) for g in globs), name
    source = Path(viewer.__file__).read_text()
    assert "<html" not in source and "addEventListener" not in source and "{box-sizing" not in source
    page = viewer.render_page({"runs": [], "rollouts": [], "pageSize": 1, "search": [], "compare": None}, "t<")
    assert "/*__JS__*/" not in page and "__DATA__" not in page and "<title>t&lt;</title>" in page
