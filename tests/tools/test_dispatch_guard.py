"""The dispatcher's timeout guard: set up only for a tool that suspends, and then still
counted from the call's start; a tool that never waits is run with no timer at all.
Everything a tool does (results, errors, cancellation) reaches it and comes back as when
it was awaited directly."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from react_eval.tools.base import dispatch
from react_eval.tools.typed import Tool, ToolFailure
from react_eval.types import ToolResult, ToolSpec

pytestmark = pytest.mark.anyio


class Scripted(Tool):
    """A tool whose run is a small script: ``block`` seconds of synchronous work first,
    then ``waits`` suspensions, then a result (or ``hang``: wait forever)."""

    spec = ToolSpec(name="t")

    def __init__(self, *, block: float = 0.0, waits: int = 0, hang: bool = False, fail: str = "") -> None:
        self.block, self.waits, self.hang, self.fail = block, waits, hang, fail
        self.seen_cancel = False
        self.steps = 0

    async def run(self, args, timeout):
        if self.block:
            time.sleep(self.block)  # a tool that holds the event loop before its first wait
        for _ in range(self.waits):
            await asyncio.sleep(0)
            self.steps += 1
        if self.fail == "tool":
            raise ToolFailure("the model can fix this")
        if self.fail == "bug":
            raise KeyError("oops")
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.seen_cancel = True
                raise
        return ToolResult(content=f"done after {self.steps} waits")


@pytest.fixture
def timers(monkeypatch):
    """Counts the guards the dispatcher sets up."""
    made = []
    for name in ("timeout", "timeout_at"):
        def counting(when, real=getattr(asyncio, name)):
            made.append(when)
            return real(when)

        monkeypatch.setattr(asyncio, name, counting)
    return made


async def test_a_tool_that_never_waits_runs_without_a_timer(timers):
    r = await dispatch({"t": Scripted()}, "t", {}, 5)
    assert r.content == "done after 0 waits" and not r.is_error
    assert timers == []
    assert r.latency_ms >= 0


async def test_a_tool_that_waits_is_finished_under_the_guard(timers):
    tool = Scripted(waits=3)
    r = await dispatch({"t": tool}, "t", {}, 5)
    assert r.content == "done after 3 waits" and not r.is_error
    assert len(timers) == 1


@pytest.mark.parametrize("waits", [0, 2])
async def test_errors_are_classified_whether_or_not_the_tool_waited(waits):
    fixable = await dispatch({"t": Scripted(waits=waits, fail="tool")}, "t", {}, 5)
    assert fixable.error_kind == "tool_error" and fixable.content == "the model can fix this"
    bug = await dispatch({"t": Scripted(waits=waits, fail="bug")}, "t", {}, 5)
    assert bug.error_kind == "tool_error" and bug.content == "Error: t failed: KeyError: 'oops'"


async def test_a_hanging_tool_is_stopped_and_sees_the_cancellation():
    tool = Scripted(waits=1, hang=True)
    with anyio.fail_after(30):
        r = await dispatch({"t": tool}, "t", {}, 0.2)
    assert r.error_kind == "timeout" and "did not finish within 0.2s" in r.content
    assert tool.seen_cancel
    assert r.latency_ms >= 150


async def test_the_deadline_counts_the_work_before_the_first_wait():
    # 1.2 s of blocking work, then a hang, with a 1 s limit: the deadline has passed when the
    # tool first waits, so it is stopped at once (a guard started only then would wait 1 s more)
    tool = Scripted(block=1.2, hang=True)
    with anyio.fail_after(30):
        r = await dispatch({"t": tool}, "t", {}, 1.0)
    assert r.error_kind == "timeout" and tool.seen_cancel
    assert 1150 <= r.latency_ms < 2000


async def test_an_outer_cancellation_reaches_the_tool_and_is_not_a_timeout():
    tool = Scripted(waits=1, hang=True)
    with anyio.move_on_after(0.2) as scope:
        await dispatch({"t": tool}, "t", {}, 60)
    assert scope.cancelled_caught and tool.seen_cancel


async def test_an_awaitable_that_is_not_a_coroutine_is_guarded_too():
    class FutureTool(Tool):
        spec = ToolSpec(name="t")

        def run(self, args, timeout):  # returns a future, not a coroutine
            return asyncio.get_running_loop().create_future()

    with anyio.fail_after(30):
        r = await dispatch({"t": FutureTool()}, "t", {}, 0.2)
    assert r.error_kind == "timeout"


@pytest.mark.parametrize("waits", [0, 2])
async def test_a_tool_that_catches_the_deadline_and_answers_keeps_its_answer(waits):
    """As under a plain ``await``: a tool that stops itself when cancelled and returns what
    it has (after one more wait) gives that result, whether the deadline hit its first wait
    or a later one."""
    class Partial(Tool):
        spec = ToolSpec(name="t")

        async def run(self, args, timeout):
            for _ in range(waits):
                await asyncio.sleep(0)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await asyncio.sleep(0)
                return ToolResult(content="partial output")
            return ToolResult(content="unreachable")

    with anyio.fail_after(30):
        r = await dispatch({"t": Partial()}, "t", {}, 0.2)
    assert r.content == "partial output" and not r.is_error
