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
def swe_base(tmp_path_factory):
    """A real swe-mini run (five tasks, scripted agent, local sandbox), each task failing its own way."""
    from tests.analysis.scripted_runs import swe_run

    return swe_run(tmp_path_factory.mktemp("swe-base") / "out", "base")


@pytest.fixture(scope="session")
def swe_cand(tmp_path_factory):
    """The same tasks with a better agent: two of them fixed."""
    from tests.analysis.scripted_runs import swe_run

    return swe_run(tmp_path_factory.mktemp("swe-cand") / "out", "cand")


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """A real smoke run (scripted agent, two repeats), one task answered wrong."""
    from tests.analysis.scripted_runs import smoke_run

    return smoke_run(tmp_path_factory.mktemp("smoke-run") / "out")
