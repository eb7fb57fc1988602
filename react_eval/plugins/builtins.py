"""The built-in plugins: one line each, by dotted path (nothing is imported until used).

To add a built-in, add its line here::

    Plugin("solver", "simple", "react_eval.solvers.simple:SimpleSolver", origin=B),
"""

from __future__ import annotations

from react_eval.plugins.registry import Plugin

B = "builtin"

BUILTINS: list[Plugin] = [
    # benchmarks: name -> a Benchmark class (its keyword arguments are the entry's ``options``)
    Plugin("benchmark", "smoke", "react_eval.benchmarks.smoke:SmokeBenchmark", origin=B),
    Plugin("benchmark", "swe-mini", "react_eval.benchmarks.swe:SweMiniBenchmark", origin=B),
    Plugin("benchmark", "swe-local", "react_eval.benchmarks.swe_local:SweLocalBenchmark", origin=B),
    Plugin("benchmark", "swebench", "react_eval.benchmarks.swebench_dataset:SWEbenchBenchmark", origin=B),
    Plugin("benchmark", "humaneval", "react_eval.benchmarks.humaneval:HumanEvalBenchmark", origin=B),
    Plugin("benchmark", "qa", "react_eval.benchmarks.qa:QABenchmark", origin=B),  # --dataset FILE: none shipped
    Plugin("benchmark", "gsm8k", "react_eval.benchmarks.qa:GSM8KBenchmark", origin=B),
    Plugin("benchmark", "mcq", "react_eval.benchmarks.qa:MCQBenchmark", origin=B),
    Plugin("benchmark", "humaneval+", "react_eval.benchmarks.evalplus_bench:HumanEvalPlus", origin=B,
           needs=("evalplus", "evalplus")),
    Plugin("benchmark", "mbpp+", "react_eval.benchmarks.evalplus_bench:MbppPlus", origin=B,
           needs=("evalplus", "evalplus")),
    # sandboxes: type -> provider factory(config, *, run_id)
    Plugin("sandbox", "local", "react_eval.sandboxes.registry:local_provider",
           "react_eval.sandboxes.local:LocalSandboxConfig", origin=B),
    Plugin("sandbox", "docker", "react_eval.sandboxes.registry:docker_provider",
           "react_eval.sandboxes.docker.config:DockerSandboxConfig", origin=B),
    # tool sources: type -> ToolSource factory(config, *, services)
    Plugin("tool_source", "sandbox", "react_eval.engine.tool_sources:sandbox_tools",
           "react_eval.engine.tool_sources:SandboxToolsConfig", origin=B),
    Plugin("tool_source", "gym", "react_eval.engine.tool_sources:gym_tools",
           "react_eval.engine.tool_sources:GymToolsConfig", origin=B),
    # solvers: type -> class(model, tools, config, recorder) with ``async run(task, system_prompt, tool_defs)``
    Plugin("solver", "tool_calling", "react_eval.loop:ReActLoop", "react_eval.engine.config:SolverConfig", origin=B),
    Plugin("solver", "simple", "react_eval.solvers.simple:SimpleSolver", "react_eval.engine.config:SolverConfig", origin=B),
    # graders: type -> class(config) with ``async verify(task, answer, env)`` (replaces the benchmark's)
    Plugin("grader", "answer_match", "react_eval.benchmarks.answer_grader:AnswerMatch", origin=B),
    # executors: type -> factory(config, *, max_concurrent) of where a benchmark's rollouts run
    Plugin("executor", "ray", "react_eval.engine.ray_executor:RayExecutorConfig.build",
           "react_eval.engine.ray_executor:RayExecutorConfig", origin=B),
]
