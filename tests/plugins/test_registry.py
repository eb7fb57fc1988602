"""The plugin registry: built-ins, entry points, class paths, and the config
fields typed from it (a plugin's config errors name their field path)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from react_eval.benchmarks import registry as benchmarks
from react_eval.benchmarks.base import Benchmark
from react_eval.cli_config import sandbox_flag
from react_eval.engine.config import ConfigError, SolverConfig, load_config, validate_config
from react_eval.engine.run import tool_sources
from react_eval.plugins import PluginError, Registry, UnknownPlugin, registry
from react_eval.plugins.builtins import BUILTINS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "react_eval_example_plugin"
PKG = "react_eval_example_plugin"


@pytest.fixture
def example_on_path(monkeypatch):
    """The example plugin importable by class path, not installed (no entry points)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield
    for name in [n for n in sys.modules if n.startswith(PKG)]:
        del sys.modules[name]


def config_data(**entry) -> dict:
    return {"services": {"m": {"type": "api", "base_url": "oracle://reference", "model": "oracle"}},
            "benchmarks": [{"name": "smoke", "solver": {"service": "m"}, **entry}]}


def errors_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    return str(info.value)


class TinyBench(Benchmark):
    name = "tiny"


def test_registering_a_benchmark_keeps_every_built_in():
    benchmarks.register("tiny", TinyBench)
    try:
        names = set(benchmarks.available())
        assert {"tiny", "smoke", "swe-mini", "humaneval", "swebench"} <= names
        assert isinstance(benchmarks.get_benchmark("smoke"), Benchmark)
        assert isinstance(benchmarks.get_benchmark("tiny"), TinyBench)
    finally:
        benchmarks.unregister("tiny")
    with pytest.raises(benchmarks.UnknownBenchmark, match="unknown benchmark 'tiny'"):
        benchmarks.get_benchmark("tiny")


def test_every_built_in_loads_with_its_config_class():
    for plugin in BUILTINS:
        fresh = Registry([plugin], entry_points=False)
        assert callable(fresh.load(plugin.kind, plugin.name)), plugin
        if plugin.kind != "benchmark":
            assert issubclass(fresh.config_class(plugin.kind, plugin.name), BaseModel), plugin


def test_an_unknown_type_names_the_field_and_lists_the_choices(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent("""\
        services:
          m: {type: api, base_url: "oracle://reference", model: oracle}
        sandboxes:
          box:
            type: dockr
        benchmarks:
          - name: smoke
            solver: {type: tool_caling, service: m}
    """))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:5: sandboxes.box.type: unknown sandbox 'dockr'; did you mean 'docker'? known: docker, local" in text
    assert "benchmarks.0.solver.type: unknown solver 'tool_caling'; did you mean 'tool_calling'?" in text


def test_a_class_path_plugin_config_gets_field_path_errors(example_on_path):
    text = errors_of(config_data(
        tool_sources=[{"class": f"{PKG}.tools.CalculatorToolSource", "max_exponent": 0, "colour": "red"}],
        grader={"class": f"{PKG}.grader.ToleranceGrader", "tolerance": -1},
        solver={"class": f"{PKG}.solver.ReminderLoop", "service": "m"},
    ))
    assert "benchmarks.0.tool_sources.0.max_exponent: Input should be greater than or equal to 1" in text
    assert "benchmarks.0.tool_sources.0.colour: unknown key (not allowed here)" in text
    assert "benchmarks.0.grader.tolerance: Input should be greater than or equal to 0" in text
    assert "benchmarks.0.solver.reminder: Field required" in text


def test_class_path_mistakes_are_worded_for_the_author(example_on_path):
    text = errors_of(config_data(sandbox={"class": "no_such_pkg.mod.Provider"}))
    assert "benchmarks.0.sandbox.type: cannot import 'no_such_pkg.mod'" in text
    text = errors_of(config_data(sandbox={"class": f"{PKG}.sandbox.Missing"}))
    assert f"module '{PKG}.sandbox' has no attribute 'Missing'" in text
    text = errors_of(config_data(sandbox={"type": "local", "class": f"{PKG}.sandbox.SeededSandboxProvider"}))
    assert "benchmarks.0.sandbox.type: give type: or class:, not both" in text
    # a solver's config must carry what the engine reads (service, limits): SolverConfig
    text = errors_of(config_data(solver={"class": f"{PKG}.tools.CalculatorToolSource", "service": "m"}))
    assert "must subclass react_eval.engine.config.SolverConfig" in text


def test_plugin_configs_dump_to_data_that_validates_back(example_on_path):
    config = validate_config(config_data(
        sandbox={"class": f"{PKG}.sandbox.SeededSandboxProvider", "files": {"a.txt": "x"}},
        tool_sources=[{"type": "sandbox"}, {"class": f"{PKG}.tools.CalculatorToolSource"}],
        grader={"type": "answer_match", "field": "answer"},
    ))
    data = config.redacted()
    entry = data["benchmarks"][0]
    assert entry["sandbox"]["class"] == f"{PKG}.sandbox.SeededSandboxProvider"
    assert entry["tool_sources"][0] == {"type": "sandbox"}
    assert entry["grader"]["type"] == "answer_match"
    assert validate_config(data).redacted() == data


def test_tool_sources_are_built_by_the_registry_in_order(example_on_path):
    data = config_data(tool_sources=[{"class": f"{PKG}.tools.CalculatorToolSource"}])
    data["services"]["g"] = {"type": "gym", "url": "http://127.0.0.1:9"}
    data["benchmarks"][0]["solver"].update(resource_service="g", sandbox_tools=True)
    config = validate_config(data)
    sources = tool_sources(config, config.benchmarks[0], has_sandbox=True)
    assert [s.label for s in sources] == ["gym", "calculator", "sandbox"]
    assert [s.label for s in tool_sources(config, config.benchmarks[0], has_sandbox=False)] == ["gym", "calculator"]
    bad = config_data(tool_sources=[{"type": "gym", "service": "m"}])
    assert "benchmarks.0.tool_sources.0.service: 'm' must name a type: gym service" in errors_of(bad)


def test_entry_points_are_read_from_installed_distributions(tmp_path, monkeypatch):
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[react_eval.sandboxes]\nmine = my_plugin_mod:Provider\nlocal = my_plugin_mod:Hijack\n"
        "[react_eval.graders]\nstrict = my_plugin_mod:Strict\n")
    (tmp_path / "my_plugin_mod.py").write_text(textwrap.dedent("""\
        from pydantic import BaseModel
        class Options(BaseModel):
            depth: int = 1
        class Provider:
            config_class = Options
            def __init__(self, config, *, run_id):
                self.config, self.run_id = config, run_id
        class Strict:
            def __init__(self, config):
                self.config = config
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh = Registry(list(BUILTINS))
    assert "mine" in fresh.names("sandbox") and "strict" in fresh.names("grader")
    assert fresh.get("sandbox", "mine").origin == "entry point (my-plugin)"
    assert fresh.get("sandbox", "local").origin == "builtin"  # a plugin cannot take a built-in's name
    config = fresh.config_class("sandbox", "mine").model_validate({"depth": 3})
    provider = fresh.build("sandbox", config, run_id="r1", unused="ignored")
    assert (provider.config.depth, provider.run_id) == (3, "r1")
    grader_config = fresh.config_class("grader", "strict").model_validate({"type": "strict"})
    assert fresh.name_of("grader", grader_config) == "strict"


def test_register_replaces_only_its_own_name():
    fresh = Registry(list(BUILTINS), entry_points=False)

    class Opts(BaseModel):
        model_config = ConfigDict(extra="forbid")

    fresh.register("sandbox", "local", lambda config: "mine", config=Opts)
    assert fresh.build("sandbox", Opts()) == "mine"
    assert "docker" in fresh.names("sandbox")
    with pytest.raises(UnknownPlugin, match="known: docker, local"):
        fresh.get("sandbox", "nope")
    with pytest.raises(PluginError, match="unknown plugin kind"):
        fresh.names("models")


def test_sandbox_flag_lists_the_registered_choices():
    assert sandbox_flag("bwrap") == {"type": "local", "isolation": "bwrap"}
    assert sandbox_flag("docker") == {"type": "docker"}
    registry.register("sandbox", "extra-box", "react_eval.sandboxes.registry:local_provider",
                      config="react_eval.sandboxes.local:LocalSandboxConfig")
    try:
        assert sandbox_flag("extra-box") == {"type": "extra-box"}
    finally:
        registry.unregister("sandbox", "extra-box")
    with pytest.raises(ConfigError, match="--sandbox must be one of bwrap, docker, local, got 'nope'"):
        sandbox_flag("nope")


def test_the_default_solver_is_the_react_loop():
    from react_eval.loop import ReActLoop

    config = validate_config(config_data())
    solver = config.benchmarks[0].solver
    assert isinstance(solver, SolverConfig) and solver.type == "tool_calling"
    assert registry.load("solver", registry.name_of("solver", solver)) is ReActLoop
