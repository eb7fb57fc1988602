"""``harbor:PATH``: Harbor task directories run with react-eval's own loop.

Each task runs in a container of its own environment image (built from
``environment/Dockerfile``, see :mod:`react_eval.benchmarks.harbor_image`), with
``instruction.md`` as the prompt, the sandbox tools, and the task's settings:
``[agent] timeout_sec`` limits the agent, ``[environment]`` cpus / memory_mb /
env / workdir shape the container, ``[verifier]`` timeout_sec / env the tests.

When the agent is done, grading follows Harbor in the same container:
``/tests`` and ``/logs/verifier`` are emptied, the task's ``tests/`` copied to
``/tests``, and ``bash /tests/test.sh`` run in the task's working directory
(output kept in ``/logs/verifier/test-stdout.txt``). The reward comes from
``/logs/verifier/reward.json`` (several named rewards, kept whole in the
details; the main one is ``reward``, the only key, or the ``reward_key``
option) or else ``reward.txt`` (one number). No reward file, an unreadable one,
or tests that overrun their timeout are ``verify_error`` -- never a 0.

A task with neither a Dockerfile nor a ``docker_image`` may also run in a local
or bwrap sandbox: then ``/tests``, ``/logs`` and ``/solution`` live under the
workdir's ``.harbor/``, and those absolute paths in the task's scripts are
rewritten to point there (``paths_mapped_to`` in the details).

``react-eval validate`` uses ``solution/`` as the oracle: its files are written
to ``/solution`` and ``bash /solution/solve.sh`` runs (with ``[solution] env``).

Like Harbor, the tests run where the agent worked, so an agent that subverts the
container (replacing ``bash`` or the test tools) can subvert its grading;
stale reward files are removed before the tests run.
"""

from __future__ import annotations

import math
import shlex
from functools import cached_property
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson

from react_eval.benchmarks.base import Answer, Benchmark, PlannedCall, ReferenceSolution, RolloutEnv, Verification
from react_eval.benchmarks.harbor_task import HarborTask, HarborTaskError, discover, not_applied, resolve_env
from react_eval.sandboxes.base import Sandbox
from react_eval.types import SandboxError, SandboxSpec, Task, VerifyError

PREFIX = "harbor:"
TESTS, SOLUTION, VERIFIER_LOGS = "/tests", "/solution", "/logs/verifier"
#: where those live, under the workdir, in a sandbox that is not a container of the task's image
MAPPED_ROOT = ".harbor"

HARBOR_SYSTEM_PROMPT = (
    "You are an autonomous agent working in a Linux container through tools: bash (a persistent shell), "
    "file_read, file_write and str_replace_editor. Complete the task the user gives you by acting in the "
    "container: inspect files, run commands, make the changes, and check your work. Tests are run in the "
    "container after you finish. When you are done, reply with a short summary and no tool call."
)


def _tail(text: str, limit: int = 3000) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


class HarborBenchmark(Benchmark):
    name = "harbor"
    description = "Harbor task directories (instruction.md, task.toml, environment/, tests/, solution/)"
    verification = "sandbox_artifact"
    needs_sandbox = True
    default_system_prompt = HARBOR_SYSTEM_PROMPT

    def __init__(self, path: str, *, reward_key: str | None = None):
        self.path = str(Path(path).expanduser().resolve())
        #: which key of a reward.json is the task's reward (default: ``reward``, or the only key)
        self.reward_key = reward_key
        self._images: dict[str, tuple[str, str]] = {}  # task id -> (image, workdir)
        #: set by prepare: no container, so Harbor's absolute paths are mapped under the workdir
        self.mapped = False

    @cached_property
    def _tasks(self) -> dict[str, HarborTask]:
        return {t.name: t for t in discover(Path(self.path))}

    def harbor_task(self, task_id: str) -> HarborTask:
        return self._tasks[task_id]

    def tasks(self) -> list[Task]:
        return [self._make_task(t) for t in self._tasks.values()]

    def _make_task(self, ht: HarborTask) -> Task:
        env = ht.config.environment
        image, workdir = self._images.get(ht.name, (env.docker_image, ""))
        return Task(
            id=ht.name,
            prompt=ht.instruction,
            timeout=ht.config.agent.timeout_sec,
            metadata={
                "harbor_task": str(ht.path),
                "harbor_metadata": ht.config.metadata,
                "verifier_timeout_sec": ht.config.verifier.timeout_sec,
                "agent_timeout_sec": ht.config.agent.timeout_sec,
                "harbor_not_applied": not_applied(ht.config),
            },
            sandbox=SandboxSpec(
                image=image,
                workdir=env.workdir or workdir or None,
                cpus=env.cpus,
                memory_mb=env.memory_mb,
                env=resolve_env(env.env, f"{ht.path}/task.toml [environment].env"),
            ),
        )

    # ---- before the rollouts: the environment images

    async def prepare(self, tasks: list[Task], sandbox: Any) -> list[Task]:
        """Build (or reuse) each selected task's image; refuse a sandbox that cannot run it."""
        if getattr(sandbox, "type", None) != "docker":
            imaged = [t.id for t in tasks if self.harbor_task(t.id).dockerfile is not None
                      or self.harbor_task(t.id).config.environment.docker_image]
            if imaged:
                kind = getattr(sandbox, "type", None) or "local"
                raise HarborTaskError(
                    f"Harbor tasks run in their environment image, which needs a docker sandbox, not {kind!r}: "
                    f"pass --sandbox docker (or a sandbox of type: docker in the config); "
                    f"{len(imaged)} selected task(s) have an image ({', '.join(imaged[:5])})")
            self.mapped = True  # no image anywhere: /tests, /logs, /solution live under the workdir
            return [self._make_task(self.harbor_task(t.id)) for t in tasks]
        self.mapped = False
        from react_eval.benchmarks.harbor_image import ImageBuilder

        builder = ImageBuilder(getattr(sandbox, "docker_host", None))
        try:
            for task in tasks:
                ht = self.harbor_task(task.id)
                if ht.name in self._images:
                    continue
                if ht.dockerfile is not None:
                    built = await anyio.to_thread.run_sync(
                        lambda: builder.ensure(ht.name, ht.environment_dir, timeout=ht.config.environment.build_timeout_sec))
                    self._images[ht.name] = (built.tag, built.workdir)
                else:  # a prebuilt docker_image, or the run's own sandbox image
                    image = ht.config.environment.docker_image or getattr(sandbox, "image", None)
                    workdir = await anyio.to_thread.run_sync(lambda: builder.inspect_workdir(image)) if image else None
                    self._images[ht.name] = (ht.config.environment.docker_image, workdir or "")
        finally:
            builder.close()
        return [self._make_task(self.harbor_task(t.id)) for t in tasks]

    # ---- after the agent: Harbor's tests in the same container

    async def collect_artifact(self, task: Task, env: RolloutEnv) -> str | None:
        return None  # the container itself is what is graded

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        if env.sandbox is None:
            raise SandboxError("Harbor tasks need a sandbox, and this rollout has none")
        ht = self.harbor_task(task.id)
        sandbox = env.sandbox
        root = f"{sandbox.workdir.rstrip('/')}/{MAPPED_ROOT}" if self.mapped else ""
        tests, logs = root + TESTS, root + VERIFIER_LOGS
        await self._checked(sandbox, f"rm -rf {tests} {logs} && mkdir -p {tests} {logs}",
                            f"could not reset {tests} and {logs}")
        await _upload_dir(sandbox, ht.tests_dir, tests)
        if self.mapped:
            await self._checked(sandbox, _map_paths_command(tests, root), "could not map the tests' paths")
        timeout = ht.config.verifier.timeout_sec
        variables = resolve_env(ht.config.verifier.env, f"{ht.path}/task.toml [verifier].env")
        command = (f"{_env_prefix(variables)}bash {tests}/test.sh > {logs}/test-stdout.txt 2>&1; "
                   f"status=$?; cat {logs}/test-stdout.txt; exit $status")
        result = await sandbox.run(command, timeout=timeout, cwd=sandbox.workdir)
        details: dict[str, Any] = {"harbor_task": str(ht.path), "test_exit_code": result.exit_code,
                                   "test_output": _tail(result.output)}
        if self.mapped:
            details["paths_mapped_to"] = root
        if task.metadata.get("harbor_not_applied"):
            details["harbor_not_applied"] = task.metadata["harbor_not_applied"]
        if result.timed_out:
            raise VerifyError(f"the task's tests did not finish within [verifier] timeout_sec = {timeout:g}s; "
                              f"output tail: {_tail(result.output, 800)}")
        rewards, source = await self._read_rewards(sandbox, result.output, logs)
        key = self._main_key(rewards, source)
        details.update({"reward_file": source, "rewards": rewards, "reward_key": key})
        return Verification(reward=float(rewards[key]), details=details)

    async def _read_rewards(self, sandbox: Sandbox, output: str, logs: str) -> tuple[dict[str, float], str]:
        """Harbor's order: reward.json first, else reward.txt; anything unusable is a VerifyError."""
        for name in ("reward.json", "reward.txt"):
            path = f"{logs}/{name}"
            try:
                data = await sandbox.read_file(path, max_bytes=1 << 20)
            except FileNotFoundError:
                continue
            except Exception as exc:
                raise VerifyError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
            return _parse_rewards(name, data, path), name
        raise VerifyError(f"the tests wrote no reward ({logs}/reward.json or reward.txt); "
                          f"output tail: {_tail(output, 800)}")

    def _main_key(self, rewards: dict[str, float], source: str) -> str:
        if self.reward_key is not None:
            if self.reward_key not in rewards:
                raise VerifyError(f"{source} has no key {self.reward_key!r} (option reward_key); keys: {sorted(rewards)}")
            return self.reward_key
        if "reward" in rewards:
            return "reward"
        if len(rewards) == 1:
            return next(iter(rewards))
        raise VerifyError(f"{source} holds several rewards ({', '.join(sorted(rewards))}) and none is named "
                          "'reward': set the benchmark option reward_key to the one pass@k should use")

    @staticmethod
    async def _checked(sandbox: Sandbox, command: str, what: str) -> None:
        r = await sandbox.run(command, timeout=120)
        if r.timed_out or r.exit_code != 0:
            raise VerifyError(f"{what}: {_tail(r.output, 800)}")

    # ---- the oracle

    def reference_solution(self, task: Task) -> ReferenceSolution | None:
        """Write ``solution/`` to /solution with file_write, then run solve.sh with bash."""
        ht = self.harbor_task(task.id)
        if ht.solve_script is None:
            return None
        steps = []
        root = ht.solve_script.parent
        solution = MAPPED_ROOT + SOLUTION if self.mapped else SOLUTION  # mapped: relative to the workdir
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            target = f"{solution}/{path.relative_to(root).as_posix()}"
            data = path.read_bytes()
            try:
                steps.append(PlannedCall("file_write", {"path": target, "content": data.decode("utf-8")}))
            except UnicodeDecodeError:
                raise HarborTaskError(f"{path}: the oracle writes solution files as text; this one is binary") from None
        variables = resolve_env(ht.config.solution.env, f"{ht.path}/task.toml [solution].env")
        run = f"{_env_prefix(variables)}bash {solution}/solve.sh"
        if self.mapped:  # the oracle's shell starts in the workdir
            run = f"{_map_paths_command(solution, f'$PWD/{MAPPED_ROOT}')} && {run}"
        steps.append(PlannedCall("bash", {"command": run}))
        return ReferenceSolution(steps=steps, final_message="Ran the reference solution (solution/solve.sh).")


def _map_paths_command(directory: str, root: str) -> str:
    """A shell command rewriting Harbor's absolute paths (/tests, /logs, /solution)
    in every file under ``directory`` to the same paths under ``root``."""
    pattern = r"(^|[^[:alnum:]_.~$/-])/(tests|logs|solution)([/[:space:]\"');|&]|$)"
    script = f"s#{pattern}#\\1{root}/\\2\\3#g"
    return f'find {directory} -type f -exec sed -i -E "{script}" {{}} +'


def _env_prefix(variables: dict[str, str]) -> str:
    if not variables:
        return ""
    return "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items()) + " "


async def _upload_dir(sandbox: Sandbox, source: Path, target: str) -> None:
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = f"{target}/{path.relative_to(source).as_posix()}"
        try:
            await sandbox.write_file(dest, path.read_bytes(), mode=path.stat().st_mode & 0o777)
        except SandboxError:
            raise
        except Exception as exc:
            raise VerifyError(f"could not copy {path} into the container: {type(exc).__name__}: {exc}") from exc


def _parse_rewards(name: str, data: bytes, path: str) -> dict[str, float]:
    text = data.decode("utf-8", errors="replace").strip()
    if not text:
        raise VerifyError(f"{path} is empty")
    if name == "reward.txt":
        try:
            value = float(text)
        except ValueError:
            raise VerifyError(f"{path} is not a number: {text[:200]!r}") from None
        rewards: Any = {"reward": value}
    else:
        try:
            rewards = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise VerifyError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(rewards, dict) or not rewards:
            raise VerifyError(f"{path} must be a JSON object of named rewards, got {text[:200]!r}")
    for key, value in rewards.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise VerifyError(f"{path}: reward {key!r} is not a finite number: {value!r}")
    return {str(k): float(v) for k, v in rewards.items()}
