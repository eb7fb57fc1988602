"""``client: openai``: the openai SDK as the transport.

The SDK's typed methods build and send the request (its own body encoding:
the reference the ``fast`` transport is tested against), with its retries
off so that :mod:`react_eval.model.retry` owns them; its exceptions become
react-eval's attempt errors, and the reply's raw JSON goes to the same
wire-format reader as the ``fast`` transport's. Imported only by a service
that asks for it (the SDK takes most of a second to import).
"""

from __future__ import annotations

from typing import Any

import httpx
import openai

from react_eval.model.config import ModelConfig
from react_eval.model.errors import ModelConnectionError, ModelHTTPError, ModelTimeoutError
from react_eval.model.transport import decode


class SDKTransport:
    """An ``openai.AsyncOpenAI`` client for one service, with one keep-alive pool."""

    def __init__(self, config: ModelConfig):
        self.request_timeout = config.request_timeout
        limits = httpx.Limits(max_connections=config.max_concurrent,
                              max_keepalive_connections=config.max_concurrent)
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.resolved_api_key(),
            timeout=config.request_timeout,
            max_retries=0,  # retries are react-eval's, so Retry-After is honoured once
            http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=config.request_timeout),
        )
        self._endpoints = {"/chat/completions": self.client.chat.completions.with_raw_response,
                           "/responses": self.client.responses.with_raw_response}

    async def post(self, path: str, fields: dict[str, Any], extra_body: dict[str, Any]) -> Any:
        url = f"{str(self.client.base_url).rstrip('/')}{path}"
        try:
            raw = await self._endpoints[path].create(**fields, extra_body=extra_body or None)
        except openai.APIStatusError as exc:
            response = exc.response
            raise ModelHTTPError(response.status_code, response.content, response.headers, url) from exc
        except openai.APITimeoutError as exc:
            raise ModelTimeoutError(f"no whole reply within {self.request_timeout:g}s (POST {url})") from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise ModelConnectionError(f"{type(cause).__name__}: {cause} (POST {url})") from exc
        response = raw.http_response
        return decode(response.content, response.headers.get("content-type"))

    async def aclose(self) -> None:
        await self.client.close()
