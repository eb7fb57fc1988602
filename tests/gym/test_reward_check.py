"""/verify rewards are checked before they are averaged (gym/benchmark.py)."""

from __future__ import annotations

import pytest

from react_eval.gym.benchmark import DEFAULT_REWARD_RANGE, _reward_range, checked_reward
from react_eval.types import VerifyError


@pytest.mark.parametrize("reward", [0, 1, 0.25, 1.0])
def test_rewards_in_range_pass(reward):
    assert checked_reward({"reward": reward}, DEFAULT_REWARD_RANGE) == float(reward)


@pytest.mark.parametrize("reward, message", [
    (1e308, "outside"), (-0.5, "outside"), (1.0000001, "outside"), (float("nan"), "non-finite"),
    (float("inf"), "non-finite"), (10**400, "non-finite"), (True, "numeric"), ("1", "numeric"), (None, "numeric"),
])
def test_bad_rewards_are_verify_errors(reward, message):
    with pytest.raises(VerifyError, match=message):
        checked_reward({"reward": reward}, DEFAULT_REWARD_RANGE)


def test_reward_range_is_an_option():
    assert checked_reward({"reward": -3}, _reward_range([-5, 5])) == -3.0
    for bad in ([1, 0], ["a", 1], [0, float("inf")], 3):
        with pytest.raises(ValueError, match="reward_range"):
            _reward_range(bad)
