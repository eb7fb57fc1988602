"""SWE grading without the swebench package: the whole test log is read back
(local and Docker), losing any of it is a verify_error, junit grading follows
swebench's skip/xfail rules, and instance images are named per dataset."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from react_eval.benchmarks.grading_log import log_path, run_logged
from react_eval.benchmarks.patches import APPLY_CHAIN_V4, APPLY_CHAIN_V5, apply_patch, setup_command
from react_eval.benchmarks.swe import SweInstance
from react_eval.benchmarks.swebench_dataset import SWEbenchBenchmark, guess_dataset_kind, image_name
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.types import SandboxSpec, VerifyError

MIB = 1 << 20
#: prints a django-style log of ~1.5 MiB: 0.75 MiB before the start marker, the
#: F2P result first in a > 512 KiB test section, P2P results after it
BIG_LOG = (
    "python3 -c \"import sys; w = sys.stdout.write\n"
    "w('+ git show\\n' + ''.join('+noise %07d lorem ipsum dolor sit amet consectetur adipiscing elit sed do\\n' % i"
    " for i in range(9000)))\n"
    "w(\\\"+ : '>>>>> Start Test Output'\\ntest_a (m.T) ... ok\\n\\\")\n"
    "w(''.join('  warning %07d: lorem ipsum dolor sit amet consectetur adipiscing elit sed do\\n' % i"
    " for i in range(8000)))\n"
    "w(\\\"test_b (m.T) ... ok\\n+ : '>>>>> End Test Output'\\n\\\")\""
)


@pytest.fixture
async def local(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path / "sandboxes")))
    yield provider
    await provider.aclose()


@pytest.fixture
async def docker(docker_engine, sandbox_run_id):
    from react_eval.sandboxes.docker import DockerSandboxProvider
    from react_eval.sandboxes.docker.config import DockerSandboxConfig

    provider = DockerSandboxProvider(DockerSandboxConfig(memory="512m"), run_id=f"{sandbox_run_id}-{uuid.uuid4().hex[:6]}")
    yield provider
    await provider.aclose()


def _check_big_log(text: str) -> None:
    assert len(text.encode()) > 1.2 * MIB
    start = text.index(">>>>> Start Test Output")
    end = text.index(">>>>> End Test Output")
    assert start > 512 * 1024 and end - start > 512 * 1024  # what a head+tail cap would cut out
    assert "test_a (m.T) ... ok" in text[start:end] and "test_b (m.T) ... ok" in text[start:end]
    assert "omitted" not in text


async def _big_log_read_whole(provider, repo: str) -> None:
    sandbox = await provider.create(SandboxSpec(files={"a.txt": "x\n"}, setup=setup_command(".", init=True)), labels={})
    try:
        capped = await sandbox.run(BIG_LOG, timeout=120)  # what the old grader read
        assert capped.dropped_chars > 0 or "omitted" in capped.output
        log = await run_logged(sandbox, BIG_LOG, repo=repo, timeout=120)
        assert log.exit_code == 0 and not log.timed_out and log.size == len(log.output.encode())
        _check_big_log(log.output)
        with pytest.raises(VerifyError, match=r"the test log is \d+ bytes, over the 1048576-byte cap"):
            await run_logged(sandbox, BIG_LOG, repo=repo, timeout=120, max_bytes=MIB)
        with pytest.raises(VerifyError, match="disappeared"):  # the run deletes its own log
            await run_logged(sandbox, 'rm -f "$(readlink -f /proc/$$/fd/1)"', repo=repo, timeout=60)
    finally:
        await sandbox.close()


@pytest.mark.anyio
async def test_a_big_log_is_read_whole_in_a_local_sandbox(local):
    await _big_log_read_whole(local, ".")


@pytest.mark.anyio
@pytest.mark.docker
async def test_a_big_log_is_read_whole_in_docker(docker):
    await _big_log_read_whole(docker, ".")


@pytest.mark.anyio
@pytest.mark.docker
async def test_the_log_lives_outside_the_repository_in_docker(docker):
    sandbox = await docker.create(SandboxSpec(files={"a.txt": "x\n"}), labels={})
    try:
        first, second = log_path(sandbox, "."), log_path(sandbox, ".")
        assert first.startswith("/tmp/react-eval-grader-") and first != second
        assert not first.startswith(sandbox.workdir)
    finally:
        await sandbox.close()


# ---------------------------------------------------------------- junit semantics

TESTS = '''import pytest


def test_fixed():
    assert 1 + 1 == 2


@pytest.mark.xfail(reason="known", strict=False)
def test_xfail():
    assert False


@pytest.mark.skip(reason="no database")
def test_skipped():
    pass


def test_kept():
    print("x" * 200)
    assert True
'''


def _junit_row(f2p: list[str], p2p: list[str]) -> dict:
    return {"instance_id": "demo__demo-1", "repo": "demo/demo", "problem_statement": "p", "version": "1.0",
            "FAIL_TO_PASS": json.dumps(f2p), "PASS_TO_PASS": json.dumps(p2p)}


async def _junit_grade(local, tmp_path: Path, f2p: list[str], p2p: list[str]):
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps(_junit_row(f2p, p2p)) + "\n")
    bench = SWEbenchBenchmark(str(dataset), grading="junit", repo_path=".", python=sys.executable, env_setup=None)
    (inst,) = bench.instances()
    sandbox = await local.create(SandboxSpec(files={"tests/test_demo.py": TESTS}, setup=setup_command(".", init=True)),
                                 labels={})
    try:
        return await bench.run_tests(inst, sandbox, {})
    finally:
        await sandbox.close()


@pytest.mark.anyio
async def test_junit_counts_xfail_as_passed_and_a_skipped_p2p_as_maintained(local, tmp_path):
    v = await _junit_grade(local, tmp_path, ["tests/test_demo.py::test_fixed", "tests/test_demo.py::test_xfail"],
                           ["tests/test_demo.py::test_skipped", "tests/test_demo.py::test_kept"])
    assert v.details["tests"]["tests/test_demo.py::test_xfail"] == "xfailed"
    assert v.details["tests"]["tests/test_demo.py::test_skipped"] == "skipped"
    assert v.reward == 1.0 and v.details["resolved"] is True
    assert v.details["pass_to_pass"]["passed"] == ["tests/test_demo.py::test_skipped", "tests/test_demo.py::test_kept"]


@pytest.mark.anyio
async def test_junit_a_skipped_f2p_is_not_a_fix(local, tmp_path):
    v = await _junit_grade(local, tmp_path, ["tests/test_demo.py::test_skipped"], ["tests/test_demo.py::test_kept"])
    assert v.reward == 0.0 and v.details["fail_to_pass"]["failed"] == ["tests/test_demo.py::test_skipped"]


# ---------------------------------------------------------------- images


def _inst(instance_id: str, **extra) -> SweInstance:
    return SweInstance(instance_id=instance_id, problem_statement="p", FAIL_TO_PASS=["t"], **extra)


def test_image_namespaces_follow_the_dataset(tmp_path, monkeypatch):
    inst = _inst("Owner__Repo-12")
    assert guess_dataset_kind("/data/SWE-bench_Live-test.jsonl") == "live"
    assert guess_dataset_kind("swe-bench-verified.jsonl") == "verified"
    assert guess_dataset_kind("SWE-bench_Multilingual.jsonl") == "multilingual"
    assert guess_dataset_kind("rows.jsonl") == "full"
    assert image_name(inst, None, "x86_64", "starryzhang") == "starryzhang/sweb.eval.x86_64.owner_1776_repo-12:latest"
    rows = tmp_path / "SWE-bench_Live.jsonl"
    rows.write_text(json.dumps({**_junit_row(["t"], []), "instance_id": "Owner__Repo-12"}) + "\n")
    monkeypatch.setattr("react_eval.benchmarks.swebench_dataset.host_arch", lambda: "x86_64")
    live = SWEbenchBenchmark(str(rows))
    assert live.dataset_kind == "live" and live.tasks()[0].sandbox.image.startswith("starryzhang/sweb.eval.x86_64.")
    mirror = SWEbenchBenchmark(str(rows), image_namespace="registry.local:5000/mirror", dataset_kind="verified")
    assert mirror.tasks()[0].sandbox.image == "registry.local:5000/mirror/sweb.eval.x86_64.owner_1776_repo-12:latest"
    with pytest.raises(ValueError, match="dataset_kind"):
        SWEbenchBenchmark(str(rows), dataset_kind="extended")


def test_arm64_hosts_get_images_that_exist(tmp_path, monkeypatch, caplog):
    rows = tmp_path / "SWE-bench_Verified.jsonl"
    rows.write_text(json.dumps({**_junit_row(["t"], []), "instance_id": "django__django-11099"}) + "\n")
    monkeypatch.setattr("react_eval.benchmarks.swebench_dataset.host_arch", lambda: "arm64")
    bench = SWEbenchBenchmark(str(rows), grading="junit")
    # Verified is published for x86_64 only: that name, run under emulation, with a note
    assert bench.tasks()[0].sandbox.image == "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
    assert "x86_64 only" in bench.platform_note and "emulation" in bench.platform_note
    with caplog.at_level("WARNING"):
        bench.preflight(bench.tasks())
    assert "emulation" in caplog.text
    native = SWEbenchBenchmark(str(rows), grading="junit", arch="arm64", image_namespace="me")  # own arm64 builds
    assert native.tasks()[0].sandbox.image == "me/sweb.eval.arm64.django_1776_django-11099:latest"
    assert native.platform_note is None


# ---------------------------------------------------------------- patch application


@pytest.mark.anyio
async def test_patches_apply_through_the_official_chain_and_record_the_method(local):
    """A patch made against an older blob: swebench 5's chain merges it with
    --3way, swebench 4's (no --3way) needs patch --fuzz; a patch already in the
    tree counts as applied on 5 only; a failed chain leaves the tree clean."""
    lines = "".join(f"line {i}\n" for i in range(1, 31))
    sandbox = await local.create(SandboxSpec(files={"f.py": lines}, setup=setup_command(".", init=True)), labels={})
    try:
        r = await sandbox.run("sed -i 's/^line 10$/line TEN/' f.py && git diff --full-index > ../p.patch && "
                              "git checkout -q f.py && sed -i 's/^line 8$/line EIGHT/' f.py && "
                              "git -c user.name=t -c user.email=t@t commit -qam moved && cat ../p.patch", timeout=60)
        patch = r.output
        assert "+line TEN" in patch and r.exit_code == 0
        v5 = await apply_patch(sandbox, patch, chain=APPLY_CHAIN_V5)
        assert v5.method == "git_apply_3way", v5.output
        assert (await sandbox.read_file("f.py")).decode().count("line TEN") == 1
        # without blob ids nothing can re-apply it, and patch --forward refuses a reversed one
        in_tree = (await sandbox.run("git -c user.name=t -c user.email=t@t commit -qam ten && git diff HEAD~1",
                                     timeout=30)).output
        plain = "".join(line + "\n" for line in in_tree.splitlines() if not line.startswith("index "))
        assert (await apply_patch(sandbox, plain, chain=APPLY_CHAIN_V5)).method == "already_applied"
        assert (await apply_patch(sandbox, plain, chain=APPLY_CHAIN_V4)).method is None  # 4.x has no such check
        await sandbox.run("git reset -q --hard HEAD~1 && git clean -fdq", timeout=30)
        v4 = await apply_patch(sandbox, patch, chain=APPLY_CHAIN_V4)
        assert v4.method == "patch_fuzz", v4.output
        assert [line.split(" ")[1:3] for line in v4.output.splitlines() if line.startswith("$ ")] == [
            ["git", "apply"], ["git", "apply"], ["patch", "--batch"]]
        await sandbox.run("git reset -q --hard && git clean -fdq", timeout=30)
        bad = await apply_patch(sandbox, patch.replace("line 11", "line eleven"), chain=APPLY_CHAIN_V5, fuzz=0)
        assert bad.method is None and bad.output.count("$ ") == 4
        status = await sandbox.run("git status --porcelain", timeout=30)
        assert status.output.strip() == ""  # no .rej, no partial hunk left
    finally:
        await sandbox.close()
