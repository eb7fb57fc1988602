"""How a model request travels: the :class:`Transport` interface, and
``client: fast`` (:class:`HTTPTransport`, aiohttp + orjson), the default.

A transport sends one request body to one endpoint path and returns the
reply's decoded JSON, or raises one of :mod:`react_eval.model.errors`'
attempt errors; what the body means (chat completions or Responses) is the
wire format's business, retries are :mod:`react_eval.model.retry`'s.

The openai SDK costs several milliseconds of CPU per call on a small machine
(request-option models, a recursive transform of the whole history, httpx,
pydantic objects for the reply), and httpx's pool slows down as connections
grow. This transport sends the same body for a fraction of that:

* the body is one ``orjson.dumps``;
* to a plain ``http://`` endpoint with no proxy (a local or cluster model
  server, the common case) the request goes out on the service's keep-alive
  pool of :mod:`react_eval.http1` (one write, replies framed by
  httptools: about a quarter of aiohttp's CPU per request);
* over TLS or through the environment's proxy (resolved once, not per
  request) it goes on one shared ``aiohttp.ClientSession`` per service, whose
  pool is sized by ``max_concurrent``;
* the reply is parsed with orjson into plain dicts, no models.

The SDK (``client: openai``, :mod:`react_eval.model.sdk`) is imported only by
a service that asks for it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from react_eval.http1 import ExchangeError, HTTP1Pool, host_header, request_head
from react_eval.jsonsafe import clean_json
from react_eval.model.config import ModelConfig
from react_eval.model.errors import (ModelConnectionError, ModelError, ModelHTTPError, ModelTimeoutError,
                                     UnusableReplyError)
from react_eval.version import __version__


class Transport(Protocol):
    """Sends one request of a service and returns the reply's JSON."""

    async def post(self, path: str, fields: dict[str, Any], extra_body: dict[str, Any]) -> Any:
        """``POST {base_url}{path}`` with ``fields`` (named as the SDK names them)
        and ``extra_body`` merged into the JSON body, last."""
        ...

    async def aclose(self) -> None: ...


class HTTPTransport:
    """``client: fast``: one keep-alive pool per service (:class:`HTTP1Pool` for plain
    HTTP without a proxy, else aiohttp's)."""

    def __init__(self, config: ModelConfig):
        self.base_url = config.base_url.rstrip("/")
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "authorization": f"Bearer {config.resolved_api_key()}",
            "user-agent": f"react-eval/{__version__}",
        }
        self.request_timeout = config.request_timeout
        self._timeout = aiohttp.ClientTimeout(total=config.request_timeout)
        self._limit = config.max_concurrent
        self._session: aiohttp.ClientSession | None = None
        self.proxy, self._proxy_auth = _env_proxy(self.base_url)
        self._urls: dict[str, URL] = {}
        #: a full endpoint URL (NEL's ``url`` with a non-standard path) is posted to as given
        self._endpoint = URL(config.endpoint) if config.endpoint else None
        origin = self._endpoint or URL(self.base_url)
        self._pool = None
        if origin.scheme == "http" and self.proxy is None and origin.host:
            self._pool = HTTP1Pool(origin.host, origin.port or 80)
            self._host = host_header(origin.host, origin.port)
            # the head's fixed part, per path: the session headers and what aiohttp would add
            self._fixed = {**self._headers, "accept-encoding": "gzip, deflate"}
            self._heads: dict[str, bytes] = {}
            request_head("POST", "/", self._host, self._fixed)  # a header that would break the framing fails here

    def _client(self) -> aiohttp.ClientSession:
        """One session per service, made on first use (it binds to the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
            # trust_env=False: aiohttp would look up the proxy and ~/.netrc in a thread on
            # every request; the proxy is resolved once (_env_proxy) and set on the session,
            # not passed with every request, and the key is a header
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, headers=self._headers,
                                                  trust_env=False, auto_decompress=True, proxy=self.proxy,
                                                  proxy_auth=self._proxy_auth)
        return self._session

    def _url(self, path: str) -> URL:
        if self._endpoint is not None:
            return self._endpoint
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self.base_url + path)
        return url

    async def post(self, path: str, fields: dict[str, Any], extra_body: dict[str, Any]) -> Any:
        body = encode({**fields, **extra_body} if extra_body else fields)
        if self._pool is not None:
            return await self._exchange(path, body)
        url = self._url(path)
        try:
            async with self._client().post(url, data=body) as reply:
                status, headers, content = reply.status, reply.headers, await reply.read()
        except asyncio.TimeoutError as exc:
            raise ModelTimeoutError(f"no whole reply within {self.request_timeout:g}s (POST {url})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ModelConnectionError(f"{type(exc).__name__}: {exc} (POST {url})") from exc
        if status >= 300:
            raise ModelHTTPError(status, content, headers, str(url))
        return decode(content, headers.get("content-type"))

    async def _exchange(self, path: str, body: bytes) -> Any:
        """``post`` on the plain-HTTP pool, with the same errors as on aiohttp."""
        head = self._heads.get(path)
        if head is None:
            url = self._url(path)
            head = self._heads[path] = request_head("POST", url.raw_path_qs, self._host, self._fixed)
        pool = self._pool
        assert pool is not None
        deadline = asyncio.get_running_loop().time() + self.request_timeout
        try:
            reply = await pool.exchange(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body), deadline)
        except TimeoutError as exc:
            raise ModelTimeoutError(f"no whole reply within {self.request_timeout:g}s (POST {self._url(path)})") from exc
        except (ExchangeError, OSError) as exc:
            raise ModelConnectionError(f"{type(exc).__name__}: {exc} (POST {self._url(path)})") from exc
        if reply.status >= 300:
            raise ModelHTTPError(reply.status, reply.content, reply.headers, str(self._url(path)))
        try:
            return orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            return decode(reply.content, reply.header(b"content-type"))

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._session is not None:
            await self._session.close()


def encode(payload: dict[str, Any]) -> bytes:
    """The request body. A lone surrogate a tool server sent goes out as U+FFFD;
    anything that is not JSON data at all is a :class:`ModelError` (not retried)."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        pass
    try:
        return orjson.dumps(clean_json(payload))
    except TypeError as exc:
        raise ModelError(f"cannot encode the request as JSON: {exc}") from exc


def decode(content: bytes, content_type: str | None) -> Any:
    """The JSON of a 2xx body (``NaN`` and friends accepted, as the SDK accepts
    them), or :class:`UnusableReplyError` naming what came instead."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(content)
    except ValueError as exc:
        kind = (content_type or "no content type").split(";")[0].strip()
        text = content[:200].decode("utf-8", errors="replace")
        raise UnusableReplyError(f"the server's reply is not JSON ({kind}: {exc}): {text!r}") from exc


def _env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment sets for ``url`` (HTTP(S)_PROXY, NO_PROXY), as
    httpx and the SDK would use it; looked up once per service."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None
