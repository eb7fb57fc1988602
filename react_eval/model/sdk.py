"""``client: openai``: chat completions through the openai SDK (the typed reference)."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from react_eval.model.chat import RetryingModel, check_completion_shape
from react_eval.model.config import ModelConfig
from react_eval.model.response import ModelResponse, make_tool_call, split_reasoning


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
    """``POST /chat/completions`` with tools."""

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        kwargs = self.config.generation.request_kwargs()
        if tools:
            kwargs["tools"] = tools

        async def request():
            completion = await self.client.chat.completions.create(
                model=self.config.model, messages=messages, **kwargs
            )
            check_completion_shape(completion)
            return completion

        completion, latency_ms, attempts = await self._with_retries(request)
        return self._parse(completion, latency_ms, attempts)

    @staticmethod
    def _parse(completion: Any, latency_ms: float, attempts: int) -> ModelResponse:
        choice = completion.choices[0]
        message = choice.message
        extra = message.model_extra or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        content, think = split_reasoning(message.content)
        if think and not reasoning:
            reasoning = think
        calls = [
            make_tool_call(tc.id, tc.function.name, tc.function.arguments, i)
            for i, tc in enumerate(message.tool_calls or [])
            if getattr(tc, "function", None) is not None
        ]
        usage = completion.usage
        prompt_details = getattr(usage, "prompt_tokens_details", None) if usage else None
        completion_details = getattr(usage, "completion_tokens_details", None) if usage else None
        return ModelResponse(
            content=content,
            tool_calls=calls,
            reasoning=reasoning if isinstance(reasoning, str) else None,
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=getattr(prompt_details, "cached_tokens", None),
            reasoning_tokens=getattr(completion_details, "reasoning_tokens", None),
            latency_ms=latency_ms,
            model=completion.model,
            attempts=attempts,
        )
