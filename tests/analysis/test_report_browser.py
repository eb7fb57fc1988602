"""report.html in headless Chromium over a real run: readable, and linked into the viewer."""

from __future__ import annotations

import pytest

from react_eval.analysis.report import write_report
from tests.analysis.browser import js_errors, screenshot, set_width, wait

pytestmark = pytest.mark.slow


def _css(driver, selector: str):
    return driver.find_element("css selector", selector)


def test_report_links_into_the_viewer(browser, smoke_dir, tmp_path):
    _, html_path = write_report(smoke_dir, out_dir=tmp_path / "report")
    for width in (1440, 1024):
        set_width(browser, width)
        browser.get(html_path.as_uri())
        wait(browser, lambda d: d.find_element("id", "outcomes"))
        # every chart fits the window and its text is at least 12 CSS px tall where it is drawn
        smallest = browser.execute_script("""
          let least = 1e9;
          for (const t of document.querySelectorAll('svg.chart text')) {
            const r = t.getBoundingClientRect(); if (r.height > 0) least = Math.min(least, r.height); }
          return least;""")
        assert smallest >= 12, smallest
        screenshot(browser, f"report-{width}-outcomes", ["#outcomes svg.chart", "#outcomes table a"], tmp_path)
        screenshot(browser, f"report-{width}-heatmap", ["svg[data-chart='heatmap']", "svg[data-chart='pass_at_k']"],
                   tmp_path)
    # a heatmap cell opens that rollout in the viewer (matplotlib's links open a new tab)
    cell = _css(browser, "svg[data-chart='heatmap'] a[*|href$='/1/smoke-csv-sum']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    report_tab = browser.current_window_handle
    cell.find_element("css selector", "path").click()
    wait(browser, lambda d: len(d.window_handles) == 2)
    browser.switch_to.window([h for h in browser.window_handles if h != report_tab][0])
    try:
        wait(browser, lambda d: d.find_element("id", "detail-title").text == "task smoke-csv-sum · repeat 1")
        assert _css(browser, "#panes .why-line").text == "why: failed answer 0 ≠ expected 10745"
        assert js_errors(browser) == []
    finally:
        browser.close()
        browser.switch_to.window(report_tab)
    # the outcome table's "failed (completed)" opens the list filtered to those rollouts
    browser.get(html_path.as_uri())
    _css(browser, "#outcomes table a[href*='outcome=fail']").click()
    wait(browser, lambda d: len(d.find_elements("css selector", "#rollouts tbody tr")) == 8)
    assert _css(browser, "#f-kind").get_attribute("value") == "completed"
    assert _css(browser, "#f-reward").get_attribute("value") == "fail"
    assert js_errors(browser) == []
    set_width(browser, 1440)
