"""Solvers other than the ReAct loop (``tool_calling``, in :mod:`react_eval.loop`)."""
