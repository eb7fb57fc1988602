"""Which failed attempts are retried, how long to wait, and the error that ends the call.

Retries are tenacity's: up to ``max_attempts`` attempts while the failure is
transient (429, 5xx, connection, timeout, an unusable 2xx body), waiting the
server's Retry-After or a full-jitter exponential backoff in between, outside
the service's concurrency slot. A permanent 4xx is never retried. The first
attempt runs outside tenacity (:func:`~react_eval.retrying.retrying_after`).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Awaitable, Callable, TypeVar

from tenacity import RetryCallState, stop_after_attempt

from react_eval.model.config import ModelConfig
from react_eval.model.errors import (AuthError, ContextOverflowError, ModelConnectionError, ModelError,
                                     ModelHTTPError, ModelTimeoutError, UnusableReplyError,
                                     looks_like_context_overflow)
from react_eval.retrying import retrying_after

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, connection errors, timeouts and unusable bodies are transient."""
    if isinstance(exc, ModelHTTPError):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, (ModelConnectionError, ModelTimeoutError, UnusableReplyError))


class RetryAfterOrBackoff:
    """The wait before the next attempt (a tenacity wait): the server's
    Retry-After when given (capped at ``maximum``), else full-jitter exponential
    backoff, ``uniform(0, min(maximum, initial · 2^(n-1)))`` after attempt ``n``."""

    def __init__(self, initial: float, maximum: float):
        self.initial = initial
        self.maximum = maximum

    def seconds(self, exc: BaseException | None, attempt_number: int) -> float:
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            return min(asked, self.maximum)
        try:
            high = self.initial * 2 ** (attempt_number - 1)
        except OverflowError:
            high = self.maximum
        return random.uniform(0, max(0.0, min(high, self.maximum)))

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self.seconds(exc, state.attempt_number)


class Retrier:
    """The concurrency limit and retry policy of one model service."""

    def __init__(self, config: ModelConfig):
        self.max_attempts = config.max_attempts
        #: asyncio's: a free slot is a counter decrement (anyio's adds a cancellation
        #: checkpoint per acquire); a cancelled task still leaves its wait at once
        self.slots = asyncio.Semaphore(config.max_concurrent)
        self.wait = RetryAfterOrBackoff(config.retry_initial_wait, config.retry_max_wait)

    async def call(self, send: Callable[..., Awaitable[T]], *args: Any,
                   check: Callable[[T], object] | None = None) -> tuple[T, float, int]:
        """``send(*args)`` with retries, its result passed to ``check`` (which raises
        for a result to retry): (the result, latency of the attempt that succeeded
        in ms, attempts made). Raises :class:`ModelError`. The first attempt runs
        right here, so a call that succeeds at once adds no coroutine of its own."""
        async with self.slots:
            started = time.perf_counter()
            try:
                result = await send(*args)
                if check is not None:
                    check(result)
            except Exception as exc:  # noqa: BLE001 - judged by after_failure
                failed = exc
            else:
                return result, (time.perf_counter() - started) * 1000, 1

        async def attempt() -> T:
            result = await send(*args)
            if check is not None:
                check(result)
            return result

        return await self.after_failure(failed, attempt)

    async def after_failure(self, first: Exception, attempt: Callable[[], Awaitable[T]]) -> tuple[T, float, int]:
        """The rest of :meth:`call` when its first attempt, made in a slot by the
        caller, failed with ``first``: the retries, each in a slot, waiting outside one."""
        attempts, latency_ms = 1, 0.0

        async def timed() -> T:
            nonlocal attempts, latency_ms
            attempts += 1
            async with self.slots:
                started = time.perf_counter()
                result = await attempt()
                latency_ms = (time.perf_counter() - started) * 1000
                return result

        try:
            result = await retrying_after(first, timed, retry=is_retryable, wait=self.wait,
                                          stop=stop_after_attempt(self.max_attempts))
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever it is, it ends the call as a ModelError
            raise classify_failure(exc, attempts) from exc
        return result, latency_ms, attempts


def classify_failure(exc: BaseException, attempts: int) -> ModelError:
    """The error that ends the rollout, from the last failed attempt."""
    if isinstance(exc, ModelHTTPError):
        status, message = exc.status, exc.message
        if status in (400, 413, 422) and looks_like_context_overflow(message):
            return ContextOverflowError(f"context overflow reported by the server: {message}")
        if status in (401, 403):
            return AuthError(
                f"the model endpoint refused our credentials (HTTP {status}): {message}. "
                "Check the API key's environment variable (services.<name>.api_key or api_key_env)."
            )
        if is_retryable(exc):
            return ModelError(f"model call failed after {attempts} attempts: HTTP {status}: {message}")
        hint = ""
        if status in (404, 405):
            hint = (f" (POST {exc.url}: is the model URL the API's base URL, e.g. http://host:8000/v1, "
                    "and is the model name one the server serves?)")
        return ModelError(f"model call rejected (HTTP {status}, not retried): {message}{hint}")
    return ModelError(f"model call failed after {attempts} attempts: {type(exc).__name__}: {exc}")

