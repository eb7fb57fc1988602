"""engine/executor.py's frozen_heap: what it changes about the garbage collector while
rollouts run, and that it puts everything back."""

from __future__ import annotations

import gc

import pytest

from react_eval.engine.executor import RUN_GC_GEN0, frozen_heap


def test_rollouts_run_with_fewer_young_collections_and_the_old_settings_come_back():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with frozen_heap():
            assert gc.get_threshold() == (RUN_GC_GEN0, 10, 10)
            assert gc.get_freeze_count() > 0  # what existed before is out of the full passes
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0
        # a caller's own higher threshold is kept, not lowered
        gc.set_threshold(RUN_GC_GEN0 * 2, 5, 5)
        with frozen_heap():
            assert gc.get_threshold() == (RUN_GC_GEN0 * 2, 5, 5)
    finally:
        gc.set_threshold(*before)


def test_settings_come_back_when_the_run_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with frozen_heap():
            raise RuntimeError("a rollout's failure")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_cyclic_garbage_made_during_the_run_is_still_collected():
    class Node:
        pass

    with frozen_heap():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
