"""``client: fast``: chat completions over aiohttp and orjson.

The openai SDK costs several milliseconds of CPU per call on a small machine
(request-option models, a recursive transform of the whole message history,
httpx, pydantic objects for the reply), and httpx's connection pool slows down
as connections grow. This client sends the same request body and reads the
same reply into the same :class:`ModelResponse`, at a fraction of that cost:

* the body is one ``orjson.dumps`` (sampling settings merged once, at start);
* the request goes out on one shared ``aiohttp.ClientSession`` per service
  (C-accelerated HTTP parsing), whose keep-alive pool is sized by
  ``max_concurrent``; the environment's proxy is resolved once, not per request;
* the reply is parsed with orjson into plain dicts, no models.

Failures become the openai SDK's own exception types, built as the SDK builds
them (status errors with the parsed body, ``APIConnectionError``,
``APITimeoutError``, the stdlib ``JSONDecodeError`` for a garbled body), so
:mod:`react_eval.model.retry` retries and classifies both clients alike. The
SDK is imported at the first failure, not before (a one-time pause of under a
second then, instead of on every start of the CLI or of a worker process).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Mapping

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from react_eval import __version__
from react_eval.model.chat import RetryingModel, read_reply
from react_eval.model.completion import first_message, parse_completion
from react_eval.jsonsafe import clean_json
from react_eval.model.config import ModelConfig
from react_eval.model.errors import ModelError
from react_eval.model.response import ModelResponse

if TYPE_CHECKING:
    import httpx
    import openai


class FastChatModel(RetryingModel):
    """``POST /chat/completions`` with tools, without the SDK on the hot path."""

    #: the protocol's standard path under ``base_url`` (``endpoint``, when set, is used as given)
    path = "/chat/completions"

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.url = config.endpoint or config.base_url.rstrip("/") + self.path
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "authorization": f"Bearer {config.resolved_api_key()}",
            "user-agent": f"react-eval/{__version__}",
        }
        self._timeout = aiohttp.ClientTimeout(total=config.request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._proxy, self._proxy_auth = _env_proxy(self.url)
        kwargs = config.generation.request_kwargs()
        self._extra_body: dict[str, Any] = kwargs.pop("extra_body", {})  # merged last, as the SDK does
        self._kwargs = kwargs

    def _session_for_loop(self) -> aiohttp.ClientSession:
        """One session per service, made on first use (it binds to the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.config.max_concurrent, limit_per_host=self.config.max_concurrent)
            # trust_env=False: aiohttp would look up the proxy and ~/.netrc in a thread on
            # every request; the proxy is resolved once (_env_proxy) and the key is a header
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, headers=self._headers,
                                                  trust_env=False, auto_decompress=True)
        return self._session

    def encode(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> bytes:
        """The request body: the SDK's fields in the SDK's order."""
        payload: dict[str, Any] = {"model": self.config.model, "messages": messages, **self._kwargs}
        if tools:
            payload["tools"] = tools
        if self._extra_body:
            payload.update(self._extra_body)
        try:
            return orjson.dumps(payload)
        except TypeError:  # e.g. a lone surrogate a tool server sent: sent as U+FFFD
            return orjson.dumps(clean_json(payload))

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        try:
            body = self.encode(messages, tools)
        except TypeError as exc:  # orjson.JSONEncodeError: something in the history is not JSON data
            raise ModelError(f"cannot encode the request as JSON: {exc}") from exc

        async def request() -> dict[str, Any]:
            try:
                async with self._session_for_loop().post(self.url, data=body, proxy=self._proxy,
                                                         proxy_auth=self._proxy_auth) as reply:
                    status, headers, content = reply.status, reply.headers, await reply.read()
            except asyncio.TimeoutError as exc:
                import openai

                raise openai.APITimeoutError(request=self._request()) from exc
            except (aiohttp.ClientError, OSError) as exc:
                import openai

                raise openai.APIConnectionError(request=self._request()) from exc
            if status >= 300:
                raise self._status_error(status, headers, content)
            data = _decode(content, headers.get("content-type"))
            self.check_reply(data)
            return data

        data, latency_ms, attempts = await self._with_retries(request)
        return read_reply(self.parse_reply, data, latency_ms, attempts)

    #: a reply without a usable first choice raises here, inside the retry loop
    check_reply = staticmethod(first_message)
    parse_reply = staticmethod(parse_completion)

    def _request(self) -> httpx.Request:
        """A request object for the SDK's exceptions (built only on failure)."""
        import httpx

        return httpx.Request("POST", self.url)

    def _status_error(self, status: int, headers: Mapping[str, str], content: bytes) -> openai.APIStatusError:
        """The SDK's ``_make_status_error_from_response``, for our reply (the SDK and
        httpx are imported here, on the first failure, not on the hot path)."""
        import httpx
        import openai

        # aiohttp already decoded the body: keep httpx from decoding it again
        kept = [(k, v) for k, v in headers.items() if k.lower() not in ("content-encoding", "content-length")]
        response = httpx.Response(status, headers=kept, content=content, request=self._request())
        message = f"Error code: {status}"
        text = content.decode("utf-8", errors="replace").strip()
        body: Any = text
        try:
            body = json.loads(text)
        except Exception:
            pass
        else:
            error = body.get("error", body) if isinstance(body, Mapping) else None
            detail = error.get("message") if isinstance(error, Mapping) else None
            if isinstance(detail, str) and detail:
                message += f" - {detail}"
        data = body.get("error", body) if isinstance(body, Mapping) else body
        cls = {
            400: openai.BadRequestError,
            401: openai.AuthenticationError,
            403: openai.PermissionDeniedError,
            404: openai.NotFoundError,
            409: openai.ConflictError,
            422: openai.UnprocessableEntityError,
            429: openai.RateLimitError,
        }.get(status)
        if cls is None:
            cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
        return cls(message, response=response, body=data)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment sets for ``url`` (HTTP(S)_PROXY, NO_PROXY), as
    httpx and the SDK would use it; looked up once per service."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None


def _decode(body: bytes, content_type: str | None) -> Any:
    """JSON of a 2xx body; as the SDK: a non-JSON body of a non-JSON content type
    is returned as text, a broken one of a JSON content type raises the stdlib's
    ``JSONDecodeError``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    content_type = (content_type or "*").split(";")[0].strip()
    try:
        return json.loads(body)  # what orjson refuses but json takes (NaN), or the stdlib's error
    except ValueError:
        if content_type.endswith("json"):
            raise
        return body.decode("utf-8", errors="replace")
