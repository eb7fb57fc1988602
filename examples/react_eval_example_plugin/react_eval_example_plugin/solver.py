"""A solver: the ReAct loop, with a standing reminder sent after the task's own messages.

    solver: {type: reminder, service: model, reminder: "Check with a tool; never guess."}
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from react_eval import LoopOutcome, ReActLoop, SolverConfig, Task


class ReminderConfig(SolverConfig):
    """Every solver config subclasses SolverConfig (service, limits, prompts)."""

    #: a user message sent after the task's messages, before the first model call
    reminder: str = Field(min_length=1)


class ReminderLoop(ReActLoop):
    config_class = ReminderConfig

    async def run(self, task: Task, system_prompt: str, tool_defs: list[dict[str, Any]]) -> LoopOutcome:
        messages = [*task.initial_messages(), {"role": "user", "content": self.config.reminder}]
        return await super().run(task.model_copy(update={"messages": messages}), system_prompt, tool_defs)
