"""Settings of one model service (an OpenAI-compatible endpoint)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


_ENDPOINTS = (("/chat/completions", "chat_completions"), ("/responses", "responses"))


def split_endpoint(url: str) -> tuple[str, str | None]:
    """``(base URL, protocol)`` of a URL that may name the endpoint itself
    (protocol None when it names none)."""
    trimmed = url.strip().rstrip("/")
    for suffix, protocol in _ENDPOINTS:
        if trimmed.endswith(suffix):
            return trimmed[: -len(suffix)], protocol
    return trimmed, None


class GenerationConfig(BaseModel):
    """Sampling parameters sent with every request (None = server default)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    stop: list[str] | str | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    #: passed through as-is (e.g. vLLM's chat_template_kwargs)
    extra_body: dict[str, Any] = Field(default_factory=dict)

    def request_kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude_none=True, exclude={"extra_body"})
        if self.extra_body:
            kw["extra_body"] = dict(self.extra_body)
        return kw


class ModelConfig(BaseModel):
    """An OpenAI-compatible service. The API key is read from ``api_key_env``
    (or given as a secret, e.g. from ``${VAR}`` in YAML) and never written out."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    model: str
    protocol: Literal["chat_completions", "responses"] = "chat_completions"
    #: transport: ``fast`` (aiohttp + orjson, the default) or ``openai`` (the
    #: openai SDK, an optional extra: ``pip install 'react-eval[openai]'``)
    client: Literal["fast", "openai"] = "fast"
    api_key_env: str | None = "OPENAI_API_KEY"
    api_key: SecretStr | None = None
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    request_timeout: float = Field(default=600.0, gt=0)
    #: concurrent requests in flight to this service, across all rollouts
    max_concurrent: int = Field(default=64, gt=0)
    #: attempts per request for retryable failures (429, 5xx, connection, timeout)
    max_attempts: int = Field(default=6, ge=1)
    retry_initial_wait: float = Field(default=1.0, ge=0)
    retry_max_wait: float = Field(default=60.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _accept_url(cls, data: Any) -> Any:
        """Accept NEL's ``url`` spelling, and a full endpoint URL as well as a base URL.

        ``.../v1/chat/completions`` and ``.../v1/responses`` (as NeMo Evaluator
        configs write them) become the base URL ``.../v1``, so the path is never
        doubled; an endpoint ending in ``/responses`` also selects that protocol
        unless ``protocol`` says otherwise."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "url" in data and "base_url" not in data:
            data["base_url"] = data.pop("url")
        url = data.get("base_url")
        if isinstance(url, str):
            base, protocol = split_endpoint(url)
            data["base_url"] = base
            if protocol is not None:
                data.setdefault("protocol", protocol)
        return data

    @model_validator(mode="after")
    def _client_installed(self) -> "ModelConfig":
        """``client: openai`` needs the SDK, an optional extra: say so before any rollout runs."""
        if self.client == "openai" and importlib.util.find_spec("openai") is None:
            raise ValueError("client: openai sends through the openai SDK, which is not installed: "
                             "pip install 'react-eval[openai]' (or use client: fast, the default, which needs no SDK)")
        return self

    def resolved_api_key(self) -> str:
        """The key to send; servers without auth accept any placeholder."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        return "EMPTY"
