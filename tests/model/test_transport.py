"""The model transport's retries and error types, against the scripted server over real HTTP.

Each test runs through both transports (``client: fast`` and ``client:
openai``): they must wait, retry and fail alike.
"""

from __future__ import annotations

import socket

import pytest

from react_eval.model.config import ModelConfig
from react_eval.model.errors import (AuthError, ModelConnectionError, ModelError, ModelHTTPError, ModelTimeoutError,
                                     UnusableReplyError, retry_after_seconds)
from react_eval.model.factory import build_model
from react_eval.model.retry import RetryAfterOrBackoff
from tests.support.scripted_server import answer, connection_reset, delay, http_error, raw

pytestmark = pytest.mark.anyio

MSGS = [{"role": "user", "content": "hi"}]
CLIENTS = pytest.mark.parametrize("client", ["fast", "openai"])


def model_for(srv_or_url, client: str, **kw):
    base = srv_or_url if isinstance(srv_or_url, str) else srv_or_url.base_url
    cfg = dict(base_url=base, model="scripted", client=client, retry_initial_wait=0.01, retry_max_wait=5.0)
    cfg.update(kw)
    return build_model(ModelConfig(**cfg))


async def failure(model) -> ModelError:
    try:
        with pytest.raises(ModelError) as info:
            await model.complete(MSGS, [])
    finally:
        await model.aclose()
    return info.value


def gaps(srv) -> list[float]:
    times = [r.arrival for r in srv.requests]
    return [b - a for a, b in zip(times, times[1:])]


@CLIENTS
@pytest.mark.parametrize("header", [{"Retry-After": "0.6"}, {"retry-after-ms": "600"}])
async def test_retry_after_is_waited_for_even_when_the_backoff_would_be_shorter(scripted_server, client, header):
    srv = scripted_server([http_error(429, headers=header), http_error(503, headers=header), answer("ok")])
    model = model_for(srv, client, retry_initial_wait=0.0)
    resp = await model.complete(MSGS, [])
    await model.aclose()
    assert (resp.content, resp.attempts, len(srv.requests)) == ("ok", 3, 3)
    assert all(g >= 0.55 for g in gaps(srv)), f"waited {gaps(srv)} after asking for 0.6 s"


@CLIENTS
async def test_a_retry_after_beyond_retry_max_wait_is_capped(scripted_server, client):
    srv = scripted_server([http_error(429, headers={"Retry-After": "3600"}), answer("ok")])
    model = model_for(srv, client, retry_max_wait=0.3)
    resp = await model.complete(MSGS, [])
    await model.aclose()
    assert resp.attempts == 2
    assert 0.25 <= gaps(srv)[0] < 60


@CLIENTS
@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
async def test_permanent_4xx_is_not_retried_and_names_the_status(scripted_server, client, status):
    srv = scripted_server([http_error(status, message="the field frobnicate is not allowed"), answer("never")],
                          strict=False)
    error = await failure(model_for(srv, client))
    assert len(srv.requests) == 1
    assert type(error) is ModelError and f"HTTP {status}, not retried" in str(error)
    assert "frobnicate" in str(error)
    cause = error.__cause__
    assert isinstance(cause, ModelHTTPError) and cause.status == status
    assert cause.url.endswith("/v1/chat/completions") and cause.retry_after is None
    assert isinstance(cause.body, dict) and "frobnicate" in cause.message


@CLIENTS
async def test_auth_failures_are_not_retried(scripted_server, client):
    srv = scripted_server([http_error(403, body={"detail": "key revoked"}), answer("never")], strict=False)
    error = await failure(model_for(srv, client))
    assert isinstance(error, AuthError) and "key revoked" in str(error)
    assert len(srv.requests) == 1


@CLIENTS
async def test_5xx_and_broken_connections_are_retried_with_growing_backoff(scripted_server, client, monkeypatch):
    """Full-jitter backoff: the wait after attempt n is drawn from [0, initial·2^(n-1)];
    the draw is pinned to its upper end here so the growth can be seen."""
    monkeypatch.setattr("react_eval.model.retry.random.uniform", lambda low, high: high)
    srv = scripted_server([http_error(500), connection_reset(), http_error(502), answer("recovered")])
    model = model_for(srv, client, retry_initial_wait=0.2, retry_max_wait=0.5)
    resp = await model.complete(MSGS, [])
    await model.aclose()
    assert (resp.content, resp.attempts, len(srv.requests)) == ("recovered", 4, 4)
    waited = gaps(srv)
    assert waited[0] >= 0.18 and waited[1] >= 0.38 and waited[2] >= 0.48, waited  # 0.2, 0.4, then capped at 0.5


def test_the_backoff_stays_within_its_bounds():
    wait = RetryAfterOrBackoff(initial=1.0, maximum=8.0)
    for attempt in range(1, 40):
        for _ in range(50):
            assert 0.0 <= wait.seconds(None, attempt) <= min(8.0, 2 ** (attempt - 1))
    assert wait.seconds(ModelHTTPError(429, b"", {"retry-after": "2"}, "u"), 1) == 2.0
    assert wait.seconds(ModelHTTPError(429, b"", {"retry-after": "100"}, "u"), 1) == 8.0


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


@CLIENTS
async def test_retries_stop_at_max_attempts(scripted_server, client):
    srv = scripted_server([http_error(503)] * 5, strict=False)
    error = await failure(model_for(srv, client, max_attempts=3))
    assert len(srv.requests) == 3
    assert "after 3 attempts: HTTP 503" in str(error)
    assert isinstance(error.__cause__, ModelHTTPError) and error.__cause__.status == 503


@CLIENTS
async def test_a_refused_connection_is_a_connection_error_naming_the_url(client):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await failure(model_for(f"http://127.0.0.1:{port}/v1", client, max_attempts=2))
    assert isinstance(error.__cause__, ModelConnectionError)
    assert "after 2 attempts" in str(error) and f"127.0.0.1:{port}/v1/chat/completions" in str(error)


@CLIENTS
async def test_a_slow_reply_is_a_timeout_error(scripted_server, client):
    srv = scripted_server([delay(3.0, answer("late"))], strict=False)
    error = await failure(model_for(srv, client, request_timeout=0.3, max_attempts=1))
    assert isinstance(error.__cause__, ModelTimeoutError) and "0.3s" in str(error)


@CLIENTS
async def test_an_unusable_2xx_is_retried_then_named(scripted_server, client):
    srv = scripted_server([raw(200, b"<html>busy</html>", content_type="text/html"), raw(200, b'{"choices": []}')],
                          strict=False)
    error = await failure(model_for(srv, client, max_attempts=2))
    assert len(srv.requests) == 2
    assert isinstance(error.__cause__, UnusableReplyError) and "no choices" in str(error)


@CLIENTS
async def test_the_responses_protocol_retries_alike(scripted_server, client):
    srv = scripted_server([http_error(429, headers={"retry-after-ms": "50"}), answer("done")])
    model = model_for(srv, client, protocol="responses")
    resp = await model.complete(MSGS, [])
    await model.aclose()
    assert (resp.content, resp.attempts) == ("done", 2)
    assert all(r.path.endswith("/v1/responses") for r in srv.requests)

