"""``client: openai``: chat completions through the openai SDK (the typed reference)."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from react_eval.model.chat import RetryingModel, read_reply
from react_eval.model.completion import first_message, parse_completion
from react_eval.model.config import ModelConfig
from react_eval.model.response import ModelResponse


class OpenAIModelBase(RetryingModel):
    """The openai SDK client for one service, with one keep-alive pool."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        limits = httpx.Limits(
            max_connections=config.max_concurrent,
            max_keepalive_connections=config.max_concurrent,
        )
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.resolved_api_key(),
            timeout=config.request_timeout,
            max_retries=0,  # our loop owns retries, so Retry-After is honoured once
            http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=config.request_timeout),
        )

    async def aclose(self) -> None:
        await self.client.close()


class ChatCompletionsModel(OpenAIModelBase):
    """``POST /chat/completions`` with tools.

    The SDK sends the request and maps failures to its exception types; the
    reply's JSON is read by :func:`~react_eval.model.completion.parse_completion`,
    as the ``fast`` client reads it (the SDK's models would pass odd shapes
    through unvalidated, to fail later in the harness)."""

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        kwargs = self.config.generation.request_kwargs()
        if tools:
            kwargs["tools"] = tools

        async def request() -> Any:
            raw = await self.client.chat.completions.with_raw_response.create(
                model=self.config.model, messages=messages, **kwargs
            )
            data = raw.http_response.json()  # a garbled body: JSONDecodeError, retried like the fast client's
            first_message(data)
            return data

        data, latency_ms, attempts = await self._with_retries(request)
        return read_reply(parse_completion, data, latency_ms, attempts)
