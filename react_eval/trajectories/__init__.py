"""ATIF trajectories: the format's models and the recorder the ReAct loop uses."""

from react_eval.trajectories import atif
from react_eval.trajectories.atif import *  # noqa: F403 - the format's public names, listed once in atif.__all__
from react_eval.trajectories.recorder import TrajectoryRecorder

__all__ = ["TrajectoryRecorder"]
__all__ += atif.__all__  # the form type checkers follow
