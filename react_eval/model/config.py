"""Settings of one model service (an OpenAI-compatible endpoint)."""

from __future__ import annotations

import importlib.util
import os
import re
from urllib.parse import urlsplit
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


# longest first: ``/chat/completions`` also ends in ``/completions``
_ENDPOINTS = (("/chat/completions", "chat_completions"), ("/responses", "responses"), ("/completions", "completions"))
_VERSION_RE = re.compile(r"/v\d+(?:beta\d*|alpha\d*)?$")

#: ``model: oracle`` is the built-in reference policy (benchmarks/oracle.py), served in-process from this URL,
#: whether a service comes from flags, a YAML config, a SLURM shard or a Ray worker
ORACLE_MODEL = "oracle"
ORACLE_URL = "oracle://reference"


def split_endpoint(url: str) -> tuple[str, str | None]:
    """``(base URL, protocol)`` of a URL that may name the endpoint itself
    (protocol None when it names none)."""
    trimmed = url.strip().rstrip("/")
    for suffix, protocol in _ENDPOINTS:
        if trimmed.endswith(suffix):
            return trimmed[: -len(suffix)], protocol
    return trimmed, None


def is_base_url(url: str) -> bool:
    """True for an API root (no path, or a path ending in a version such as ``/v1``)."""
    path = urlsplit(url.strip()).path.rstrip("/")
    return not path or bool(_VERSION_RE.search(path))


def nel_url(url: str, protocol: str | None) -> dict[str, Any]:
    """The fields of NeMo Evaluator's ``url`` (a full endpoint URL) for :class:`ModelConfig`.

    A URL ending in the standard path of its protocol becomes the base URL (the
    path is not doubled); an API root stays a base URL; any other path (e.g.
    ``.../experimental/generate``, or a chat path with ``protocol: completions``)
    is the ``endpoint``, posted to as given. The Responses client cannot post to
    another path, so ``protocol: responses`` with such a URL is refused rather
    than silently sent to ``/responses``."""
    base, url_protocol = split_endpoint(url)
    protocol = protocol or url_protocol or "chat_completions"
    if url_protocol == protocol or (url_protocol is None and is_base_url(url)):
        return {"base_url": base, "protocol": protocol}
    if protocol == "responses":
        raise ValueError(
            f"url {url!r} is not a Responses endpoint, and protocol: responses always posts to "
            "<base>/responses: give url .../v1/responses (or the base .../v1), or set protocol: chat_completions "
            "to use this URL as it is")
    parts = urlsplit(url.strip())
    return {"base_url": f"{parts.scheme}://{parts.netloc}", "endpoint": url.strip(), "protocol": protocol}


class GenerationConfig(BaseModel):
    """Sampling parameters sent with every request (None = server default)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    #: 0 is accepted (as NeMo Evaluator does): servers read it as greedy or reject it themselves
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
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
    #: ``completions`` (raw text prompt, no tools) serves ``solver.type: simple`` only
    protocol: Literal["chat_completions", "responses", "completions"] = "chat_completions"
    #: a full endpoint URL posted to as given (NEL's ``url`` with a non-standard
    #: path); None = ``base_url`` + the protocol's standard path
    endpoint: str | None = None
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
        unless ``protocol`` says otherwise (see :func:`nel_url`). ``url`` with
        any other path is a full endpoint, used as given."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        urls = [str(data.get(key) or "") for key in ("url", "base_url", "endpoint")]
        if data.get("model") == ORACLE_MODEL and not any(url.startswith("oracle://") for url in urls):
            # the reference policy calls no endpoint, so it needs no url; a url beside it is ambiguous (a
            # served model named "oracle", or the policy?) and a wrong guess either way misreports the score
            given = [key for key in ("url", "base_url", "endpoint") if data.get(key)]
            if given:
                raise ValueError(
                    f"model: oracle names the built-in reference policy, which calls no endpoint, but this service "
                    f"also sets {given[0]}: drop {given[0]} to run the reference policy (a served model cannot be "
                    "named 'oracle' here)")
            data["base_url"] = ORACLE_URL
            return data
        if isinstance(data.get("url"), str) and "base_url" not in data:
            data.update(nel_url(data.pop("url"), data.get("protocol")))
            return data
        if "url" in data and "base_url" not in data:
            data["base_url"] = data.pop("url")
        url = data.get("base_url")
        if isinstance(url, str) and split_endpoint(url)[1] is not None:
            del data["base_url"]
            data.update(nel_url(url, data.get("protocol")))
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
