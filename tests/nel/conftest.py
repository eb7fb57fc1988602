"""Fixtures of the NEL compatibility tests: the Gym tests' real resources servers."""

from tests.gym.conftest import gym_server  # noqa: F401 - a fixture, shared
