"""A model service: its wire format over its transport, with limits and retries.

``protocol`` picks the wire format (what the body and the reply mean:
:class:`~react_eval.model.completion.ChatCompletions` or
:class:`~react_eval.model.responses.Responses`), ``client`` the transport (how
the body travels: :class:`~react_eval.model.transport.HTTPTransport` or the
SDK's); any pair works, gives the same :class:`ModelResponse` and fails with
the same errors for the same server replies.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from react_eval.model.config import ModelConfig
from react_eval.model.errors import ModelError
from react_eval.model.response import ModelResponse
from react_eval.model.retry import Retrier
from react_eval.model.transport import Transport


class WireFormat(Protocol):
    """One protocol's request and reply."""

    path: str

    def request(self, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(fields as the SDK names them, extra body fields)."""
        ...

    def check(self, data: Any) -> Any:
        """Raise :class:`~react_eval.model.errors.UnusableReplyError` for a reply
        that cannot be read at all (it is retried)."""
        ...

    def parse(self, data: Any, latency_ms: float, attempts: int) -> ModelResponse: ...


class ModelClient:
    """The :class:`~react_eval.model.protocol.Model` of one service."""

    def __init__(self, config: ModelConfig, wire: WireFormat, transport: Transport):
        self.config = config
        self.wire = wire
        self.transport = transport
        self.retrier = Retrier(config)

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        wire = self.wire
        fields, extra_body = wire.request(messages, tools)
        data, latency_ms, attempts = await self.retrier.call(self.transport.post, wire.path, fields, extra_body,
                                                             check=wire.check)
        return read_reply(wire.parse, data, latency_ms, attempts)

    async def aclose(self) -> None:
        await self.transport.aclose()


def read_reply(parse: Callable[[Any, float, int], ModelResponse], data: Any, latency_ms: float,
               attempts: int) -> ModelResponse:
    """``parse(data, ...)``; a reply the parser cannot read at all ends the rollout
    as a ``model_error`` naming the problem, never as a crash of the harness."""
    try:
        return parse(data, latency_ms, attempts)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"unusable model reply: {type(exc).__name__}: {exc}") from exc
