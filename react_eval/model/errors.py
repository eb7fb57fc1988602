"""Model-call failures: what one attempt can hit, and what ends a rollout.

Both transports (``client: fast`` and ``client: openai``) raise the same
attempt errors for the same server behaviour, all subclasses of
:class:`AttemptError`: :class:`ModelHTTPError` (a non-2xx status, with the
parsed body and the server's Retry-After), :class:`ModelConnectionError`,
:class:`ModelTimeoutError` and :class:`UnusableReplyError` (a 2xx whose body
is not a usable reply). :mod:`react_eval.model.retry` retries the transient
ones and turns the last into a :class:`ModelError`, which ends the rollout
with its error kind.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Mapping

from react_eval.types import ErrorKind, RolloutError


class ModelError(RolloutError):
    """A model call failed for good (retries exhausted or a non-retryable 4xx)."""

    kind = ErrorKind.model_error


class ContextOverflowError(ModelError):
    """The server said the prompt does not fit the context window: never retried blindly."""

    kind = ErrorKind.context_overflow


class AuthError(ModelError):
    """401/403: every later call would fail the same way, so the run stops."""

    kind = ErrorKind.auth_error


class AttemptError(Exception):
    """One attempt at a model call failed (retried when transient)."""


class ModelHTTPError(AttemptError):
    """The server answered with a status other than 2xx."""

    def __init__(self, status: int, content: bytes, headers: Mapping[str, str], url: str):
        self.status = status
        self.url = url
        self.body = _parse_body(content)
        self.message = error_message(self.body) or f"HTTP {status}"
        self.retry_after = retry_after_seconds(headers)
        super().__init__(f"HTTP {status} from POST {url}: {self.message}")


class ModelConnectionError(AttemptError):
    """No connection, or the connection broke before the whole reply arrived."""


class ModelTimeoutError(AttemptError):
    """No whole reply within ``request_timeout``."""


class UnusableReplyError(AttemptError):
    """A 2xx whose body is not a usable reply (not JSON, no choices, no message,
    no output items): servers send these under load, so they are retried."""


def _parse_body(content: bytes) -> Any:
    text = content.decode("utf-8", errors="replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_message(body: Any) -> str:
    """The explanation in an error body: OpenAI's ``{"error": {"message", "code"}}``,
    vLLM's and FastAPI's flat ``{"message"}``/``{"detail"}``, or the text itself."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message", inner.get("detail", ""))
            parts = [message if isinstance(message, str) else json.dumps(message)]
            if inner.get("code"):
                parts.append(f"(code {inner['code']})")
            return " ".join(p for p in parts if p).strip() or json.dumps(body)[:2000]
        return str(inner)[:2000]
    return str(body)[:2000]


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, or ``Retry-After``
    as seconds or an HTTP date), or None."""
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
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, parsed.timestamp() - time.time())


_OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "exceeds the model's",
    "maximum input length",
    "reduce the length",
)


def looks_like_context_overflow(message: str) -> bool:
    """Recognise the overflow wording of OpenAI, vLLM, SGLang, TGI and NIM servers."""
    text = message.lower()
    return any(marker in text for marker in _OVERFLOW_MARKERS)
