"""What the loop needs from a model (built by :func:`react_eval.model.factory.build_model`)."""

from __future__ import annotations

from typing import Any, Protocol

from react_eval.model.config import ModelConfig
from react_eval.model.response import ModelResponse


class Model(Protocol):
    """One call per turn: the history and the tools in, the model's reply out.
    Failures are :class:`~react_eval.model.errors.ModelError` (after retries)."""

    config: ModelConfig

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse: ...

    async def aclose(self) -> None: ...
