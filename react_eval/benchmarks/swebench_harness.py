"""The parts of the installed ``swebench`` package react-eval grades with, for
both of its generations.

* **4.x** builds a test spec from its repo/version tables
  (``MAP_REPO_VERSION_TO_SPECS``) and picks the log parser by repository. Its
  ``make_test_spec`` also writes the environment-image script, which fetches
  requirement files from GitHub; react-eval needs only the eval script, so it
  builds the spec from ``make_eval_script_list`` alone: offline, and the same
  eval script byte for byte.
* **5.x** builds a spec only from rows that carry ``eval_script``, ``log_parser``
  and ``eval_type`` (current dataset releases) and takes the image from the
  row; react-eval passes the image it derived where a row has none.

:meth:`Harness.spec` raises :class:`Ungradable` with the reason when a row
cannot be graded, so a run can check every row before its first rollout.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from react_eval.benchmarks.patches import APPLY_CHAIN_V4, APPLY_CHAIN_V5

MISSING_SWEBENCH = (
    "grading='swebench' needs the swebench package, which is not installed: "
    "pip install 'react-eval[swebench]' (or grade with -O benchmarks.0.options.grading=junit)"
)


#: the fields a row needs for swebench >= 5 to build its spec
CURRENT_FIELDS = ("eval_script", "log_parser", "eval_type")


class Ungradable(Exception):
    """This row cannot be graded by the installed swebench (the message says why)."""


def _load(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _list(value: Any) -> list[str]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


@dataclass
class Harness:
    """One installed swebench: how it builds specs and grades logs."""

    version: str
    generation: int
    get_eval_report: Callable[..., dict[str, Any]]
    timeout_marker: str
    _build: Callable[[dict[str, Any], str, str], Any] = field(repr=False)
    apply_chain: tuple[str, ...] = APPLY_CHAIN_V5

    def spec(self, row: dict[str, Any], *, image: str, arch: str = "x86_64") -> Any:
        """The test spec of ``row``; :class:`Ungradable` if this swebench cannot build it."""
        try:
            return self._build(row, image, arch)
        except Ungradable:
            raise
        except Exception as exc:  # a table or parser the row names is missing, a bad field...
            raise Ungradable(f"swebench {self.version} could not build its test spec: "
                             f"{type(exc).__name__}: {exc}") from exc

    def report(self, spec: Any, prediction: dict[str, Any], log_path: str) -> dict[str, Any]:
        return self.get_eval_report(spec, prediction, log_path, True)


def load_harness() -> Harness:
    """Import swebench lazily; a clear error when it is missing or of an unknown shape."""
    swebench = _load("swebench")
    if swebench is None:
        raise RuntimeError(MISSING_SWEBENCH)
    version = str(getattr(swebench, "__version__", "?"))
    try:
        grading = importlib.import_module("swebench.harness.grading")
        constants = importlib.import_module("swebench.harness.constants")
    except ImportError as exc:
        raise RuntimeError(f"the installed swebench {version} cannot be imported for grading ({exc}); "
                           "pip install 'react-eval[swebench]'") from None
    timeout = getattr(constants, "TESTS_TIMEOUT", ">>>>> Tests Timed Out")
    parsers = _load("swebench.harness.log_parsers")
    if parsers is not None and hasattr(parsers, "PARSER_REGISTRY"):
        utils = importlib.import_module("swebench.harness.utils")
        return Harness(version, 5, grading.get_eval_report, timeout,
                       _current_builder(version, utils.make_test_spec, parsers.PARSER_REGISTRY), APPLY_CHAIN_V5)
    test_spec = _load("swebench.harness.test_spec.test_spec")
    scripts = _load("swebench.harness.test_spec.create_scripts")
    if test_spec is not None and scripts is not None and parsers is not None:
        build = _classic_builder(version, constants, test_spec.TestSpec, scripts.make_eval_script_list,
                                 parsers.MAP_REPO_TO_PARSER)
        return Harness(version, 4, grading.get_eval_report, timeout, build, APPLY_CHAIN_V4)
    raise RuntimeError(f"swebench {version} is not a version react-eval can grade with: install "
                       "swebench 4.x (classic rows) or 5.x (current rows), e.g. pip install 'react-eval[swebench]'")


def _current_builder(version: str, make_test_spec: Callable[[dict[str, Any]], Any],
                     registry: dict[str, Any]) -> Callable[[dict[str, Any], str, str], Any]:
    def build(row: dict[str, Any], image: str, arch: str) -> Any:
        missing = [k for k in CURRENT_FIELDS if not row.get(k)]
        if missing:
            raise Ungradable(
                f"swebench {version} builds test specs only from rows that carry {', '.join(CURRENT_FIELDS)} "
                f"(the current dataset form); this row lacks {', '.join(missing)}")
        if row["log_parser"] not in registry:
            raise Ungradable(f"swebench {version} has no log parser {row['log_parser']!r}")
        return make_test_spec({**row, "image": row.get("image") or image})

    return build


def _classic_builder(version: str, constants: Any, spec_class: type, make_eval_script_list: Callable[..., list[str]],
                     repo_parsers: dict[str, Any]) -> Callable[[dict[str, Any], str, str], Any]:
    tables = constants.MAP_REPO_VERSION_TO_SPECS
    extensions = constants.MAP_REPO_TO_EXT

    def build(row: dict[str, Any], image: str, arch: str) -> Any:
        repo, ver = row.get("repo", ""), row.get("version")
        specs = tables.get(repo, {}).get(ver)
        if specs is None:
            known = "no repository" if repo not in tables else "no version"
            raise Ungradable(f"swebench {version}'s tables have {known} entry for {repo} {ver!r}")
        if repo not in repo_parsers:
            raise Ungradable(f"swebench {version} has no log parser for {repo}")
        env, where = "testbed", "/testbed"
        # only the eval script: make_test_spec would also build the environment
        # script, which downloads requirement files from GitHub
        eval_list = make_eval_script_list(row, specs, env, where, row["base_commit"], row["test_patch"])
        return spec_class(
            instance_id=row["instance_id"], repo=repo, version=ver, repo_script_list=[],
            eval_script_list=eval_list, env_script_list=[], arch=arch,
            FAIL_TO_PASS=_list(row.get("FAIL_TO_PASS")), PASS_TO_PASS=_list(row.get("PASS_TO_PASS")),
            language=extensions[repo], docker_specs=specs.get("docker_specs", {}),
            namespace=image.split("/", 1)[0] if "/" in image else None,
        )

    return build
