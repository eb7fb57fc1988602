"""Driving Debian's headless Chromium with Selenium for the viewer and report tests.

Selenium Manager is kept offline and never asked to download a browser or a
driver. Tests skip, with the reason, when Chromium cannot be started here --
unless REACT_EVAL_REQUIRE_BROWSER=1 (CI), where that is a failure.

:func:`screenshot` saves a PNG (into REACT_EVAL_SCREENS when set, for people
to look at) after checking that the named elements are really visible: laid
out, inside the window horizontally and not covered by another element.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

# Debian's packages (chromium, chromium-driver); overridable for other layouts
CHROMIUM = os.environ.get("REACT_EVAL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("REACT_EVAL_CHROMEDRIVER", "/usr/bin/chromedriver")
HEIGHT = 900


def unavailable(reason: str) -> None:
    message = (f"headless Chromium unavailable: {reason} "
               "(install: apt-get install -y chromium chromium-driver; pip install selenium)")
    if os.environ.get("REACT_EVAL_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " -- REACT_EVAL_REQUIRE_BROWSER=1 requires it")
    print(message)
    pytest.skip(message)


def start_browser(profile: Path) -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        unavailable(f"selenium is not installed ({exc})")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            unavailable(f"{path} not found")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000",
                "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported the same way
        unavailable(f"could not start: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    driver.set_page_load_timeout(60)
    return driver


def stop_browser(driver: Any, profile: Path) -> None:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Any, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def js_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def set_width(driver: Any, width: int) -> None:
    """Make the page's viewport ``width`` CSS pixels wide."""
    driver.set_window_size(width, HEIGHT)
    inner = driver.execute_script("return window.innerWidth")
    if inner != width:
        driver.set_window_size(2 * width - inner, HEIGHT)


_VISIBLE = """
const out = [];
for (const sel of arguments[0]) {
  const node = document.querySelector(sel);
  if (!node) { out.push(sel + ': missing'); continue; }
  node.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = node.getBoundingClientRect();
  if (r.width < 4 || r.height < 4) { out.push(sel + ': not laid out'); continue; }
  if (r.left < 0 || r.right > window.innerWidth + 1) { out.push(sel + `: outside the window (${r.left}..${r.right} of ${window.innerWidth})`); continue; }
  const x = Math.min(r.left + Math.min(r.width / 2, 40), window.innerWidth - 1), y = r.top + Math.min(r.height / 2, 10);
  const hit = document.elementFromPoint(x, y);
  if (!hit || !(node === hit || node.contains(hit) || hit.contains(node))) out.push(sel + ': covered by ' + (hit ? hit.tagName + '.' + hit.className : 'nothing'));
}
if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push(`page wider than the window (${document.documentElement.scrollWidth} > ${window.innerWidth})`);
return out;
"""


def visibility_problems(driver: Any, selectors: list[str]) -> list[str]:
    """What keeps each selector's first element from being seen (empty: all visible)."""
    return driver.execute_script(_VISIBLE, selectors)


def screenshot(driver: Any, name: str, selectors: list[str], tmp: Path) -> Path:
    """Check that ``selectors`` are visible, then save ``name``.png (REACT_EVAL_SCREENS or ``tmp``)."""
    problems = visibility_problems(driver, selectors)
    assert problems == [], problems
    driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", selectors[0])
    directory = Path(os.environ.get("REACT_EVAL_SCREENS") or tmp)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 5000  # a blank page compresses to almost nothing
    return path
