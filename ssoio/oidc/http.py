"""Bounded JSON fetches from identity providers.

Provider documents are untrusted input: the body is read as a stream and abandoned
past a size limit, redirects are not followed (the URLs come from configuration or
from a discovery document whose issuer was checked), and every failure becomes
``IdpUnavailable`` with the cause logged, never shown to clients.

The timeout is a deadline for the whole exchange. httpx's own timeouts apply to each
connect, write and read separately, so a provider (or anything between it and ssoio)
sending one byte per second would keep a fetch, and every connect waiting on it, going
for as long as the body lasts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from ssoio.errors import IdpUnavailable

__all__ = ["fetch_json", "parse_json_object"]

log = logging.getLogger(__name__)


async def fetch_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    method: str = "GET",
    data: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """GET (or POST a form to) ``url`` and return its JSON object body, all of it within
    ``timeout_s``.

    :raises IdpUnavailable: on network errors, non-200 answers, bodies over
        ``max_bytes``, answers not complete within ``timeout_s`` and anything that is
        not a JSON object.
    """
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream(
                method, url, data=data, auth=auth, timeout=timeout_s, follow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise _unavailable(url, f"HTTP {response.status_code}")
                body = await _read_bounded(response, max_bytes, url)
    except TimeoutError as exc:
        raise _unavailable(url, f"no complete answer within {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise _unavailable(url, type(exc).__name__) from exc
    document = parse_json_object(body)
    if document is None:
        raise _unavailable(url, "body is not a JSON object")
    return document


def parse_json_object(body: bytes | str) -> dict[str, Any] | None:
    """A JSON object, or ``None`` for anything else (invalid JSON, arrays, NaN...)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _refuse_constant(name: str) -> Any:
    # RFC 8259 §6: NaN and Infinity are not JSON; Python's parser accepts them.
    raise ValueError(f"{name} is not JSON")


async def _read_bounded(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _unavailable(url, f"body of {declared} bytes exceeds {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _unavailable(url, f"body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _unavailable(url: str, reason: str) -> IdpUnavailable:
    log.warning("idp.fetch.failed url=%s reason=%s", url, reason)
    return IdpUnavailable(detail={"seen": {"url": url, "reason": reason},
                                  "expected": "HTTP 200 with a JSON object"})  # fmt: skip
