"""Why a rollout ended the way it did, in one line (the viewer's list and header).

:func:`explain` reads one result row -- its error kind and message, and the
verifier's details -- and names the reasons in the order a debugger checks
them: the harness (infrastructure), how the loop ended, the answer (extracted vs
expected, code checks), the patch (empty, did not apply, touches test
infrastructure, reset by the grader) and the hidden tests (which FAIL_TO_PASS
tests still fail, which PASS_TO_PASS tests broke). A passed rollout gets a
reason too, so a suspicious pass (a patch that plants ``conftest.py``) stands out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from react_eval.benchmarks.patches import parse_patch_files
from react_eval.metrics import INFRA_KINDS

#: files that change how pytest runs or reports, whoever writes them
TEST_INFRA = re.compile(r"(^|/)(conftest\.py|pytest\.ini|tox\.ini|setup\.cfg|sitecustomize\.py|usercustomize\.py"
                        r"|[^/]+\.pth)$")
TEST_FILE = re.compile(r"(^|/)(tests?/.*|test_[^/]*\.py|[^/]*_test\.py)$")
#: how many test names a one-line reason lists before "+N more"
NAMES_SHOWN = 3
#: the word for a rollout that ended without an error (never "ok": that reads as "passed")
NO_ERROR = "completed"


def outcome_label(kind: str | None) -> str:
    """A rollout's error kind for display: ``None`` (and the legacy ``"ok"``) is ``completed``."""
    return NO_ERROR if kind in (None, "", "ok", NO_ERROR) else str(kind)


@dataclass
class Why:
    """``code`` names the leading reason (for filters and colours); ``parts`` are
    the reasons found, most telling first; ``text`` joins them."""

    code: str
    parts: list[str] = field(default_factory=list)
    #: test-infrastructure or test files the patch adds or changes
    touched_tests: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "; ".join(self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "touched_tests": self.touched_tests}


def _short_test(node_id: str) -> str:
    return node_id.split("::", 1)[1] if "::" in node_id else node_id


def _names(items: list[str]) -> str:
    shown = ", ".join(_short_test(t) for t in items[:NAMES_SHOWN])
    return shown + (f" +{len(items) - NAMES_SHOWN} more" if len(items) > NAMES_SHOWN else "")


def _one_line(text: Any, limit: int = 160) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _last_line(text: Any) -> str:
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    return _one_line(lines[-1]) if lines else ""


def patch_test_files(patch: str | None) -> list[str]:
    """Files of ``patch`` that are test infrastructure or tests (paths as in the patch)."""
    if not patch:
        return []
    try:
        changes = parse_patch_files(patch)
    except Exception:  # noqa: BLE001 - a patch we cannot read simply flags nothing
        return []
    found = []
    for change in changes:
        path = change.path
        if path and (TEST_INFRA.search(path) or TEST_FILE.search(path)) and path not in found:
            found.append(path)
    return found


def _tampering(v: dict[str, Any]) -> str | None:
    """What the grader reset before the tests (``details["tampering"]``: ``{path, action, why}`` entries)."""
    entries = v.get("tampering")
    if not entries or not isinstance(entries, list):
        return None
    files = [str(e.get("path", "?")) if isinstance(e, dict) else str(e) for e in entries]
    names = ", ".join(files[:NAMES_SHOWN]) + (f" +{len(files) - NAMES_SHOWN} more"
                                             if len(files) > NAMES_SHOWN else "")
    return f"tampering reset by the grader: {names}"


def _swe_parts(v: dict[str, Any], why: Why, passed: bool) -> None:
    patch = v.get("patch")
    if v.get("capture_error"):
        why.parts.append(f"no patch captured: {_one_line(v['capture_error'])}")
    elif patch is not None and not str(patch).strip() or v.get("apply_method") == "empty":
        why.parts.append("patch empty: the agent changed no file")
    elif v.get("patch_all_binary"):
        why.parts.append("patch holds binary changes only")
    tampered = _tampering(v)
    if tampered:
        why.parts.append(tampered)
    why.touched_tests = patch_test_files(patch)
    if why.touched_tests:
        infra = [p for p in why.touched_tests if TEST_INFRA.search(p)]
        label = "test infrastructure" if infra else "test files"
        why.parts.append(f"patch changes {label}: {', '.join(why.touched_tests[:NAMES_SHOWN])}"
                         + (f" +{len(why.touched_tests) - NAMES_SHOWN} more" if len(why.touched_tests) > NAMES_SHOWN
                            else ""))
    error = v.get("error")
    if error and "does not apply" in str(error):
        detail = _last_line(v.get("apply_output"))
        why.parts.append("patch did not apply" + (f": {detail}" if detail else ""))
    elif error:
        why.parts.append(_one_line(error))
    for key, label, verb in (("fail_to_pass", "FAIL_TO_PASS", "still fail"), ("pass_to_pass", "PASS_TO_PASS", "broke")):
        split = v.get(key)
        if not isinstance(split, dict):
            continue
        failed = list(split.get("failed") or [])
        total = len(failed) + len(split.get("passed") or [])
        if failed:
            why.parts.append(f"{label} {verb} {len(failed)}/{total}: {_names(failed)}")
        elif passed and total:
            why.parts.append(f"{label} {total}/{total} pass")


def _answer_parts(v: dict[str, Any], why: Why, passed: bool) -> None:
    if "expected" in v:
        got = v.get("extracted")
        if got is None or str(got).strip() == "":
            why.parts.append(f"no answer found (expected {_one_line(v['expected'], 60)})")
        elif passed:
            why.parts.append(f"answer {_one_line(got, 60)} matches")
        else:
            why.parts.append(f"answer {_one_line(got, 60)} ≠ expected {_one_line(v['expected'], 60)}")
    if "base_status" in v:  # HumanEval / EvalPlus code checks
        statuses = [f"{k.split('_')[0]} tests {v[k]}" for k in ("base_status", "plus_status") if k in v]
        if v.get("note") and not passed:
            statuses.append(_one_line(v["note"]))
        if v.get("error") and not passed:
            statuses.append(_one_line(v["error"]))
        why.parts.append(", ".join(statuses))


def explain(row: dict[str, Any], first_failure: dict[str, Any] | None = None) -> Why:
    """The reasons of one result row; ``first_failure`` is its first failing tool call, if known."""
    kind = row.get("error_kind")
    passed = bool(row.get("passed"))
    v = row.get("verification") or {}
    if not isinstance(v, dict):
        v = {}
    if kind in INFRA_KINDS:
        why = Why("infra", [f"infrastructure: {kind}" + (f": {_one_line(row['error'])}" if row.get("error") else "")])
        return why
    why = Why("passed" if passed else "failed")
    if kind:
        why.parts.append(f"{kind}" + (f": {_one_line(row['error'])}" if row.get("error") else ""))
    is_swe = "fail_to_pass" in v or "apply_method" in v or "capture_error" in v or "instance_id" in v
    if is_swe:
        _swe_parts(v, why, passed)
    else:
        _answer_parts(v, why, passed)
        if not passed and v.get("error") and "base_status" not in v:
            why.parts.append(_one_line(v["error"]))
    if not passed and first_failure and len(why.parts) < 2:
        ff = first_failure
        what = f"exit {ff['exit_code']}" if ff.get("exit_code") is not None else (ff.get("error_kind") or "error")
        why.parts.append(f"first failing call: {ff.get('tool')} at turn {ff.get('turn')} ({what})")
    if not why.parts:
        why.parts.append("passed" if passed else f"reward {row.get('reward')}")
    why.code = _code(kind, passed, why)
    return why


def _code(kind: str | None, passed: bool, why: Why) -> str:
    text = why.text
    if passed:
        return "suspect" if why.touched_tests and any(TEST_INFRA.search(p) for p in why.touched_tests) else "passed"
    if kind:
        return kind
    for needle, code in (("patch empty", "patch_empty"), ("no patch captured", "patch_empty"),
                         ("did not apply", "patch_not_applied"), ("tampering", "tampering"),
                         ("FAIL_TO_PASS", "tests_failed"), ("PASS_TO_PASS", "tests_failed"),
                         ("no answer found", "no_answer"), ("≠ expected", "wrong_answer"),
                         ("tests fail", "tests_failed"), ("tests timeout", "tests_failed")):
        if needle in text:
            return code
    return "failed"
