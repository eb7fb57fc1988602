"""Which model-call failures are retried, and how long to wait between attempts."""

from __future__ import annotations

import email.utils
import json
import random
import time
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState

from react_eval.model.errors import AuthError, ContextOverflowError, ModelError, looks_like_context_overflow

if TYPE_CHECKING:
    import openai


class EmptyResponseError(Exception):
    """The server answered 200 with nothing usable (e.g. empty ``choices``, or a
    body that is not a completion at all)."""


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, connection errors, timeouts and garbled bodies are transient."""
    import openai  # imported by whichever client raised it; here only on a failure

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(
        exc,
        (
            openai.APIConnectionError,  # includes APITimeoutError
            openai.APIResponseValidationError,
            json.JSONDecodeError,
            EmptyResponseError,
        ),
    )


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After``)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


class RetryAfterOrBackoff:
    """The wait before the next attempt: the server's Retry-After when given, else
    full-jitter exponential backoff, ``uniform(0, min(maximum, initial · 2^(n-1)))``
    after attempt ``n`` (tenacity's ``wait_random_exponential``). Callable as a
    tenacity wait too."""

    def __init__(self, initial: float, maximum: float):
        self.initial = initial
        self.maximum = maximum

    def seconds(self, exc: BaseException | None, attempt_number: int) -> float:
        asked = retry_after_seconds(exc)
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


def classify_failure(exc: BaseException, attempts: int) -> ModelError:
    """Turn the last exception of a model call into the error that ends the rollout."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = _status_message(exc)
        if exc.status_code in (400, 413, 422) and looks_like_context_overflow(message):
            return ContextOverflowError(f"context overflow reported by the server: {message}")
        if exc.status_code in (401, 403):
            return AuthError(
                f"the model endpoint refused our credentials (HTTP {exc.status_code}): {message}. "
                "Check the API key's environment variable (services.<name>.api_key or api_key_env)."
            )
        if is_retryable(exc):
            return ModelError(f"model call failed after {attempts} attempts: HTTP {exc.status_code}: {message}")
        hint = ""
        if exc.status_code in (404, 405):
            hint = (f" (POST {_url(exc)}: is the model URL the API's base URL, e.g. http://host:8000/v1, "
                    "and is the model name one the server serves?)")
        return ModelError(f"model call rejected (HTTP {exc.status_code}, not retried): {message}{hint}")
    what = type(exc).__name__
    detail = f"{what}: {exc}"
    if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):  # where it tried
        detail += f" (POST {_url(exc)})"
    return ModelError(f"model call failed after {attempts} attempts: {detail}")


def _url(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    if request is None:
        response = getattr(exc, "response", None)
        request = getattr(response, "request", None)
    try:
        return str(request.url) if request is not None else "?"
    except Exception:  # noqa: BLE001 - httpx raises when a response has no request
        return "?"


def _status_message(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            parts = [str(inner.get("message", ""))]
            if inner.get("code"):
                parts.append(f"(code {inner['code']})")
            return " ".join(p for p in parts if p).strip() or str(exc)
        return str(inner)
    return str(exc.message or exc)
