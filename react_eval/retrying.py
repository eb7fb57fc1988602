"""Retries by tenacity, with the first attempt outside it.

A tenacity ``AsyncRetrying`` call costs tens of microseconds, paid on every
model call and every Gym request when it wraps them all; nearly all of them
succeed at once. So the caller makes the first attempt itself, and only after a
failure it should retry hands over to :func:`retrying_after`, which replays that
failure as tenacity's attempt 1: the stop, the wait (Retry-After, backoff) and
the attempt numbers are tenacity's as if it had run them all.
"""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

import anyio
from tenacity import AsyncRetrying, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

T = TypeVar("T")


async def retrying_after(first: Exception, attempt: Callable[[], Awaitable[T]], *,
                         retry: Callable[[BaseException], bool], stop: stop_base,
                         wait: wait_base | Callable[..., float]) -> T:
    """The rest of a call whose first attempt, made by the caller, failed with
    ``first``: tenacity takes over as if it had made that attempt (``first`` is
    raised at once if ``retry`` refuses it)."""
    if not retry(first):
        raise first
    replayed = False

    async def again() -> T:
        nonlocal replayed
        if not replayed:
            replayed = True
            raise first
        return await attempt()

    retrying = AsyncRetrying(stop=stop, wait=wait, retry=retry_if_exception(retry), sleep=anyio.sleep, reraise=True)
    return await retrying(again)
