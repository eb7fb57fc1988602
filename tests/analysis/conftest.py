"""The shared headless Chromium of the analysis tests (one per session)."""

from __future__ import annotations

import pytest

from tests.analysis.browser import start_browser, stop_browser


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = start_browser(profile)
    yield driver
    stop_browser(driver, profile)


@pytest.fixture(scope="session")
def swe_runs(tmp_path_factory):
    """Two real swe-mini runs (five tasks, scripted agent, local sandbox): BASE and CAND."""
    from tests.analysis.scripted_runs import swe_run

    root = tmp_path_factory.mktemp("swe-runs")
    return swe_run(root / "base", "base"), swe_run(root / "cand", "cand")


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """A real smoke run (scripted agent, two repeats), one task answered wrong."""
    from tests.analysis.scripted_runs import smoke_run

    return smoke_run(tmp_path_factory.mktemp("smoke-run") / "out")
