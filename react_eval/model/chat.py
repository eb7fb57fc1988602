"""The model interface, the shared retry loop, and the choice of client.

``ModelConfig.client`` picks the transport of chat completions: ``fast``
(:mod:`react_eval.model.fast`, aiohttp + orjson) or ``openai``
(:mod:`react_eval.model.sdk`, the SDK, the typed reference). Both give the same
:class:`ModelResponse` and raise the same errors for the same server replies.
The SDK is imported only by a client that uses it (it takes most of a second
to import: a CLI call or a worker process that does not need it is spared).
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Protocol

import anyio

from react_eval.model.config import ModelConfig
from react_eval.model.errors import ModelError
from react_eval.model.response import ModelResponse
from react_eval.model.retry import RetryAfterOrBackoff, classify_failure, is_retryable


class Model(Protocol):
    """What the loop needs from a model: one call per turn."""

    config: ModelConfig

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse: ...

    async def aclose(self) -> None: ...


class RetryingModel:
    """Concurrency limit and retry policy for one service, whatever the transport."""

    def __init__(self, config: ModelConfig):
        self.config = config
        # fast_acquire: no extra trip through the event loop when a slot is free
        self._slots = anyio.Semaphore(config.max_concurrent, fast_acquire=True)
        self._wait = RetryAfterOrBackoff(config.retry_initial_wait, config.retry_max_wait)

    async def _with_retries(self, request: Callable[[], Awaitable[Any]]) -> tuple[Any, float, int]:
        """Run ``request()`` with retries; return (raw result, latency_ms, attempts).

        Up to ``max_attempts`` attempts while the failure is retryable, waiting
        the server's Retry-After or a jittered backoff in between (outside the
        concurrency slot); the last failure is classified into a ModelError."""
        max_attempts = self.config.max_attempts
        attempts = 0
        while True:
            attempts += 1
            try:
                async with self._slots:
                    started = time.perf_counter()
                    result = await request()
                    return result, (time.perf_counter() - started) * 1000, attempts
            except ModelError:
                raise
            except Exception as exc:  # the last failure after retries, or a non-retryable one
                if attempts >= max_attempts or not is_retryable(exc):
                    raise classify_failure(exc, attempts) from exc
                await anyio.sleep(self._wait.seconds(exc, attempts))

    async def aclose(self) -> None:
        pass


def read_reply(parse: Callable[[Any, float, int], ModelResponse], raw: Any, latency_ms: float,
               attempts: int) -> ModelResponse:
    """``parse(raw, ...)``; a reply the parser cannot read at all ends the rollout
    as a ``model_error`` naming the problem, never as a crash of the harness."""
    try:
        return parse(raw, latency_ms, attempts)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"unusable model reply: {type(exc).__name__}: {exc}") from exc


def build_model(config: ModelConfig) -> Model:
    """The client for a service's protocol and ``client`` setting.

    ``client: fast`` serves chat completions without the SDK on the hot path;
    the Responses protocol always uses the SDK."""
    if config.protocol == "responses":
        from react_eval.model.responses import ResponsesModel

        return ResponsesModel(config)
    if config.protocol == "completions":
        from react_eval.model.text_completions import TextCompletionsModel

        return TextCompletionsModel(config)
    if config.client == "fast" or config.endpoint:  # a full endpoint URL: the SDK cannot post to it
        from react_eval.model.fast import FastChatModel

        return FastChatModel(config)
    from react_eval.model.sdk import ChatCompletionsModel

    return ChatCompletionsModel(config)
