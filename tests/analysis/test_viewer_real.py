"""The viewer over real runs (CLI, scripted model, local sandbox), in headless Chromium.

The runs (tests/analysis/scripted_runs.py) fail in known ways: an empty patch,
FAIL_TO_PASS tests that still fail, a planted conftest.py that passes, seven
identical failing calls, an unknown tool, arguments that are not JSON, and
max_turns running out.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from react_eval.analysis.viewer import write_viewer
from tests.analysis.browser import js_errors, screenshot, set_width, wait

pytestmark = pytest.mark.slow
SCREENS = Path(os.environ.get("REACT_EVAL_SCREENS", "")) if os.environ.get("REACT_EVAL_SCREENS") else None


def _by(css: str):
    from selenium.webdriver.common.by import By

    return By.CSS_SELECTOR, css


def rows(driver) -> list:
    return driver.find_elements(*_by("#rollouts tbody tr"))


def row_for(driver, task: str):
    for row in rows(driver):
        if row.find_elements(*_by("td.task"))[0].get_attribute("title") == task:
            return row
    raise AssertionError(f"no row for {task}")


def open_task(driver, index: Path, task: str):
    driver.get(index.as_uri())
    wait(driver, lambda d: len(rows(d)) >= 5)
    row_for(driver, task).click()
    return wait(driver, lambda d: d.find_element(*_by("#panes .why-line")))


@pytest.fixture(scope="module")
def base_index(swe_base, tmp_path_factory) -> Path:
    return write_viewer([swe_base], tmp_path_factory.mktemp("viewer-base"))


def test_why_line_in_the_list(browser, base_index, tmp_path):
    set_width(browser, 1440)
    browser.get(base_index.as_uri())
    wait(browser, lambda d: len(rows(d)) == 5)
    why = {r.find_elements(*_by("td.task"))[0].get_attribute("title"): r.find_element(*_by("td.why")).text
           for r in rows(browser)}
    assert why["acme__pagekit-101"].startswith("patch empty: the agent changed no file; FAIL_TO_PASS still fail 4/4: ")
    assert why["caching__lrukit-9"] == "FAIL_TO_PASS still fail 1/3: test_put_existing_makes_entry_recent"
    # the grader undid the planted conftest.py (and the hidden tests' file), so the plant fails
    assert why["dataio__tablekit-33"].startswith("tampering reset by the grader: conftest.py; "
                                                 "patch changes test infrastructure: conftest.py, tests/test_records.py")
    assert why["finance__ledger-44"].startswith("max_turns_exhausted: no final answer within max_turns=10; patch empty")
    assert "FAIL_TO_PASS still fail 2/2" in why["events__busline-21"]
    # no pass changed test infrastructure: the suspect-pass filter is empty, the failed filter holds the plant
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "f-reward")).select_by_value("suspect")
    wait(browser, lambda d: len(rows(d)) == 0)
    Select(browser.find_element("id", "f-reward")).select_by_value("fail")
    wait(browser, lambda d: "dataio__tablekit-33" in [r.find_element(*_by("td.task")).get_attribute("title")
                                                      for r in rows(d)])
    screenshot(browser, "viewer-list-1440-suspect-filter", ["#rollouts tbody tr td.why", "#f-reward"], tmp_path)
    assert js_errors(browser) == []


def test_why_line_and_verification_in_the_header(browser, base_index, tmp_path):
    set_width(browser, 1440)
    line = open_task(browser, base_index, "caching__lrukit-9")
    assert line.text == "why: failed FAIL_TO_PASS still fail 1/3: test_put_existing_makes_entry_recent"
    verification = browser.find_element(*_by("#panes .verification"))
    table = {r.find_element(*_by("th")).text: r.find_element(*_by("td")).text
             for r in verification.find_elements(*_by("table.kv:first-child tr"))}
    assert table["apply_method"] == "git_apply" and table["test_exit_code"] == "1" and table["resolved"] == "false"
    assert "patch" not in table and "test_output" not in table  # the patch is shown above, the log below
    f2p = verification.find_elements(*_by("details"))[0]
    assert f2p.find_element(*_by("summary")).text == "FAIL_TO_PASS: 2/3 passed" and f2p.get_attribute("open") is not None
    failed = [c.text for c in f2p.find_elements(*_by("td.t-failed"))]
    assert failed == ["failed"]
    log = [d for d in verification.find_elements(*_by("details.log"))
           if d.find_element(*_by("summary")).text.startswith("test output")][0]
    assert log.get_attribute("open") is None  # collapsed until asked for
    pre = log.find_element(*_by("pre"))
    assert not pre.is_displayed()
    log.find_element(*_by("summary")).click()
    assert pre.is_displayed() and "test_put_existing_makes_entry_recent" in pre.text and "\\n" not in pre.text
    screenshot(browser, "viewer-detail-1440-why-and-patch", ["#panes .why-line", "#panes .patch-box .diff"], tmp_path)
    assert js_errors(browser) == []


def _call(driver, tool: str, n: int = 0):
    return wait(driver, lambda d: d.find_elements(*_by(f"#panes .call[data-tool='{tool}']")))[n]


def test_calls_in_their_own_form(browser, swe_cand, tmp_path_factory, tmp_path):
    set_width(browser, 1440)
    cand = write_viewer([swe_cand], tmp_path_factory.mktemp("viewer-cand"))
    # file_write after a file_read of the same file: a diff against what the agent read
    open_task(browser, cand, "acme__pagekit-101")
    write = _call(browser, "file_write")
    diff = write.find_element(*_by("pre.diff"))
    assert diff.find_element(*_by(".d-file")).text == "pagekit/paginator.py (rewritten)"
    assert [s.text for s in diff.find_elements(*_by(".d-del"))] == ["-        return self.count // self.per_page"]
    assert "+        return math.ceil(self.count / self.per_page)" in [s.text for s in diff.find_elements(*_by(".d-add"))]
    assert "\\n" not in diff.text
    # str_replace_editor edits as diffs, views as a path; the captured patch coloured at the top
    open_task(browser, cand, "caching__lrukit-9")
    assert _call(browser, "str_replace_editor", 0).find_element(*_by(".args")).text == "view lrukit/cache.py"
    edit = _call(browser, "str_replace_editor", 1).find_element(*_by("pre.diff"))
    assert [s.text for s in edit.find_elements(*_by(".d-add"))] == ["+        self._data.move_to_end(key)"]
    patch = browser.find_element(*_by("#panes .patch-box"))
    assert patch.location["y"] < browser.find_element(*_by("#panes .step")).location["y"]  # above the turns
    assert len(patch.find_elements(*_by(".d-add"))) == 2 and patch.find_element(*_by(".d-hunk")).text.startswith("@@")
    # bash as a code block
    bash = _call(browser, "bash").find_element(*_by("pre.code"))
    assert bash.text == "$ python -m pytest -q tests/test_cache.py"
    assert js_errors(browser) == []


def test_repeats_collapse_and_odd_calls_read_well(browser, base_index, tmp_path):
    set_width(browser, 1440)
    open_task(browser, base_index, "events__busline-21")
    group = browser.find_element(*_by("#panes .step.src-agent"))
    head = group.find_element(*_by(".step-head"))
    assert head.find_element(*_by(".who")).text == "turns 1–7" and head.find_element(*_by(".badge.repeat")).text == "×7"
    hidden = browser.find_element(*_by("#panes .repeats"))
    assert not hidden.is_displayed() and len(hidden.find_elements(*_by(".step"))) == 6
    screenshot(browser, "viewer-detail-1440-repeats-collapsed", ["#panes .badge.repeat", "#panes .call[data-tool='search_code'] table.kv"], tmp_path)
    group.find_element(*_by("button.more")).click()
    assert hidden.is_displayed()
    # an unknown tool's arguments as a key/value table; arguments that are not JSON said so
    unknown = _call(browser, "search_code")
    assert unknown.find_element(*_by("table.kv th")).text == "query"
    assert "unknown_tool" in [b.text for b in unknown.find_elements(*_by(".badge"))]
    broken = [c for c in browser.find_elements(*_by("#panes .call[data-kind='invalid_json']"))][0]
    assert broken.find_element(*_by(".event")).text.startswith("arguments are not valid JSON")
    assert js_errors(browser) == []


def test_long_output_folded_with_the_cut_marked(browser, base_index, tmp_path):
    set_width(browser, 1024)
    open_task(browser, base_index, "finance__ledger-44")
    out = _call(browser, "bash").find_element(*_by("pre.folded"))
    unfold = out.find_element(*_by("button.unfold"))
    assert "the harness cut the output here" in unfold.text
    assert len(out.text.splitlines()) < 40 and out.text.startswith("1\n2\n3")
    screenshot(browser, "viewer-detail-1024-folded-output", ["#panes .call[data-tool='bash'] button.unfold"], tmp_path)
    unfold.click()
    cut = out.find_element(*_by(".cut"))
    assert re.fullmatch(r"\[\.\.\. \d+ characters truncated \.\.\.\] \(cut by the harness\)", cut.text)
    assert js_errors(browser) == []
    set_width(browser, 1440)


def _tasks(driver) -> list[str]:
    return [r.find_element(*_by("td.task")).get_attribute("title") for r in rows(driver)]


def test_search_sort_and_filters(browser, base_index, tmp_path):
    from selenium.webdriver.support.ui import Select

    set_width(browser, 1024)
    browser.get(base_index.as_uri())
    wait(browser, lambda d: len(rows(d)) == 5)
    search = browser.find_element("id", "f-q")
    # full text: an argument of a call, then a line of a tool's output
    search.send_keys("move_to_end")
    wait(browser, lambda d: _tasks(d) == ["caching__lrukit-9"])
    assert browser.find_element("id", "search-info").text == "searching arguments and outputs too"
    search.clear()
    search.send_keys("file or directory not found")
    wait(browser, lambda d: _tasks(d) == ["events__busline-21"])
    browser.find_element("id", "f-reset").click()
    wait(browser, lambda d: len(rows(d)) == 5)
    # sortable columns: tokens descending, then ascending
    header = browser.find_element(*_by("#rollouts th[data-sort='tok']"))
    header.click()
    header.click()
    tokens = [int(r.find_elements(*_by("td"))[10].text) for r in rows(browser)]
    assert tokens == sorted(tokens, reverse=True) and "sorted-desc" in header.get_attribute("class")
    # a call's error kind, a tool, turns and tokens
    kind = Select(browser.find_element("id", "f-callkind"))
    assert {"unknown_tool", "invalid_json", "nonzero_exit"} <= {o.get_attribute("value") for o in kind.options}
    kind.select_by_value("unknown_tool")
    wait(browser, lambda d: _tasks(d) == ["events__busline-21"])
    kind.select_by_value("")
    Select(browser.find_element("id", "f-tool")).select_by_value("u:file_write")
    wait(browser, lambda d: _tasks(d) == ["dataio__tablekit-33"])
    Select(browser.find_element("id", "f-tool")).select_by_value("")
    browser.find_element("id", "f-tmin").send_keys("10")
    wait(browser, lambda d: sorted(_tasks(d)) == ["events__busline-21", "finance__ledger-44"])
    browser.find_element("id", "f-kmax").send_keys("4000")
    wait(browser, lambda d: _tasks(d) == [])
    browser.find_element("id", "f-tmin").clear()
    wait(browser, lambda d: sorted(_tasks(d)) == ["acme__pagekit-101", "dataio__tablekit-33"])
    screenshot(browser, "viewer-list-1024-filtered", ["#filters", "#rollouts th[data-sort='wall']",
                                                      "#rollouts tbody tr td.why"], tmp_path)
    assert js_errors(browser) == []
    set_width(browser, 1440)


def test_links_and_keys(browser, base_index, tmp_path):
    from selenium.webdriver.common.keys import Keys

    set_width(browser, 1024)
    browser.get(base_index.as_uri())
    wait(browser, lambda d: len(rows(d)) == 5)
    order = _tasks(browser)
    body = browser.find_element("tag name", "body")
    # j j Enter opens the second rollout of the list; j in the detail opens the next one
    body.send_keys("j", "j", Keys.ENTER)
    wait(browser, lambda d: d.find_element("id", "detail-title").text == f"task {order[1]} · repeat 0")
    body.send_keys("j")
    wait(browser, lambda d: d.find_element("id", "detail-title").text == f"task {order[2]} · repeat 0")
    body.send_keys(Keys.ESCAPE)
    wait(browser, lambda d: d.find_element("id", "list-view").is_displayed())
    # n / p step through failing calls: the collapsed group counts once, then search_code, then bad JSON
    busline = order.index("events__busline-21")
    rows(browser)[busline].click()
    wait(browser, lambda d: d.find_element("id", "fail-pos").text == "3 failing calls")
    body.send_keys("n")
    wait(browser, lambda d: d.find_element("id", "fail-pos").text == "failure 1 of 3")
    body.send_keys("n")
    current = wait(browser, lambda d: d.find_element(*_by("#panes .call.current")))
    assert current.get_attribute("data-tool") == "search_code"
    assert browser.find_element("id", "fail-pos").text == "failure 2 of 3"
    body.send_keys("p")
    wait(browser, lambda d: d.find_element(*_by("#panes .call.current")).get_attribute("data-kind") == "nonzero_exit")
    # every call has a link of its own, which opens the rollout scrolled to it
    anchor = current.find_element(*_by("a.anchor")).get_attribute("href")
    assert re.search(r"#r\d+/c/call_", anchor) or "#r" in anchor
    browser.get("about:blank")
    browser.get(anchor)
    target = wait(browser, lambda d: d.find_element(*_by("#panes .call.current")))
    assert target.get_attribute("data-tool") == "search_code"
    assert browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight;", target)
    screenshot(browser, "viewer-detail-1024-call-link", ["#panes .call.current .tool-name", "#next-f", "#fail-pos"],
               tmp_path)
    assert js_errors(browser) == []
    set_width(browser, 1440)


def test_compare_view_pairs_like_compare(browser, swe_base, swe_cand, tmp_path_factory, tmp_path):
    set_width(browser, 1440)
    index = write_viewer([swe_base, swe_cand], tmp_path_factory.mktemp("viewer-ab"))
    data = json.loads(re.search(r'<script id="re-data" type="application/json">(.*?)</script>',
                                index.read_text(), re.S).group(1))
    assert data["compare"]["counts"] == {"fixed": 1, "same": 4}
    browser.get(index.as_uri())
    wait(browser, lambda d: len(rows(d)) == 10)
    assert browser.find_element("id", "compare-bar").text.startswith("A → B: pass rate 0.0% → 20.0%")  # the planted conftest no longer passes
    browser.find_element(*_by("#compare-bar .chip.c-fixed")).click()
    wait(browser, lambda d: _tasks(d) == ["caching__lrukit-9", "caching__lrukit-9"])
    screenshot(browser, "viewer-compare-list-1440-fixed", ["#compare-bar .chip.on", "#rollouts td.task .cat-fixed"],
               tmp_path)
    rows(browser)[0].click()
    wait(browser, lambda d: len(d.find_elements(*_by("#panes.split .pane h2"))) == 2)
    heads = [h.text for h in browser.find_elements(*_by("#panes .pane h2"))]
    assert heads[0].endswith("repeat 0 fail") and heads[1].endswith("repeat 0 pass")
    # B's extra edit (put) sits opposite a gap; the test runs after it line up again
    banner = browser.find_element(*_by("#panes .aligned .diverge"))
    assert banner.text == ("⚑ the rollouts diverge here: B's turn 3 (str_replace_editor) has no counterpart in A")
    cells = browser.find_elements(*_by("#panes .aligned > .cell"))
    pairs = [(cells[k], cells[k + 1]) for k in range(0, len(cells), 2)]
    turns = [(a.get_attribute("data-turn"), b.get_attribute("data-turn")) for a, b in pairs]
    assert turns[1:] == [("1", "1"), ("2", "2"), (None, "3"), ("3", "4"), ("4", "5"), (None, None)]
    screenshot(browser, "viewer-compare-detail-1440-aligned", ["#panes .aligned .diverge", "#panes .aligned .cell.missing"],
               tmp_path)
    a_bash, b_bash = pairs[4]
    assert a_bash.location["y"] == b_bash.location["y"]  # aligned side by side
    assert a_bash.find_element(*_by("pre.code")).text == b_bash.find_element(*_by("pre.code")).text
    set_width(browser, 1024)
    screenshot(browser, "viewer-compare-detail-1024-diverge", ["#panes .aligned .diverge",
                                                               "#panes .aligned .cell.missing"], tmp_path)
    assert js_errors(browser) == []
    set_width(browser, 1440)


def test_view_refuses_different_benchmarks(swe_base, smoke_dir, tmp_path):
    from typer.testing import CliRunner

    from react_eval.cli import app

    refused = CliRunner().invoke(app, ["view", str(swe_base), str(smoke_dir), "--out", str(tmp_path / "v")])
    assert refused.exit_code == 2 and "different benchmarks (swe-mini vs smoke)" in refused.stderr
    assert not (tmp_path / "v" / "index.html").exists()
