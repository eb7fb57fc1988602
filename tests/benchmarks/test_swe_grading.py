"""SWE grading on its own: patches that do not apply, and a patch that fakes the
test report from a conftest.py (caught by checking pytest's exit status)."""

from __future__ import annotations

import pytest

from react_eval.benchmarks.swe import SweMiniBenchmark
from react_eval.grading.sandbox import grading_sandbox
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider

pytestmark = pytest.mark.anyio

FAKE_REPORT = '''import pathlib


def pytest_unconfigure(config):
    # after pytest wrote its junit report, replace it with one where everything passed
    path = getattr(config.option, "xmlpath", None)
    if not path:
        return
    cases = "".join(
        f'<testcase classname="{cls}" name="{name}"/>'
        for cls, name in [("tests.test_cache", "test_get_makes_entry_recent"),
                          ("tests.test_cache", "test_put_existing_makes_entry_recent"),
                          ("tests.test_memo", "test_memoize_keeps_hot_entries"),
                          ("tests.test_cache", "test_evicts_oldest_insert"),
                          ("tests.test_cache", "test_hits_and_misses"),
                          ("tests.test_cache", "test_capacity_validated"),
                          ("tests.test_memo", "test_memoize_calls_once")]
    )
    pathlib.Path(path).write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
'''


def _conftest_patch() -> str:
    lines = FAKE_REPORT.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
            f"@@ -0,0 +1,{len(lines)} @@\n{body}")


@pytest.fixture
async def provider(tmp_path):
    p = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path / "sandboxes")))
    yield p
    await p.aclose()


async def grade(provider, task_id: str, patch: str):
    bench = SweMiniBenchmark()
    inst = bench.instance(task_id)
    async with grading_sandbox(provider, bench.sandbox_spec(inst), bench.grading_env, labels={},
                               probe=True) as graded:
        return await bench.grade(inst, patch, graded, {"patch": patch})


async def test_a_conftest_that_fakes_the_report_is_removed_and_flagged(provider):
    result = await grade(provider, "caching__lrukit-9", _conftest_patch())
    assert result.details["apply_method"] == "git_apply"
    assert result.reward == 0.0
    assert result.details["tampering"] == [{"path": "conftest.py", "action": "removed",
                                            "why": "conftest.py changes how pytest runs"}]
    assert result.details["flags"] == ["tampering"]
    assert result.details["test_exit_code"] == 1  # the real run: the unfixed tests fail
    assert result.details["tests"]["tests/test_cache.py::test_get_makes_entry_recent"] == "failed"
    assert result.details["tests"]["tests/test_cache.py::test_hits_and_misses"] == "passed"


async def test_a_patch_that_does_not_apply_scores_zero_without_running_tests(provider):
    patch = ("diff --git a/lrukit/cache.py b/lrukit/cache.py\n--- a/lrukit/cache.py\n+++ b/lrukit/cache.py\n"
             "@@ -1,3 +1,3 @@\n this is\n-not the\n+file at all\n base\n")
    result = await grade(provider, "caching__lrukit-9", patch)
    assert result.reward == 0.0 and result.details["apply_method"] is None
    assert "does not apply" in result.details["error"] and "tests" not in result.details


async def test_gold_patch_via_fuzz_still_grades(provider):
    """The gold patch with its context lines shifted and one edge context line
    changed only applies with patch --fuzz; the grade records that."""
    bench = SweMiniBenchmark()
    gold = bench.instance("events__busline-21").patch
    fuzzy = gold.replace("@@ -30,7 +30,8 @@", "@@ -27,7 +27,8 @@").replace(
        "     def emit(self, event, payload=None):", "     def emit(self, event, payload=None, *, strict=False):")
    assert fuzzy.count("strict=False") == 1 and "@@ -27,7" in fuzzy
    result = await grade(provider, "events__busline-21", fuzzy)
    assert result.details["apply_method"] == "patch_fuzz", result.details["apply_output"]
    assert result.reward == 1.0 and result.details["resolved"] is True
