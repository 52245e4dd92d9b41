"""The Starlette side of authlib's server: requests in, responses out.

authlib ships server integrations for Flask and Django only. Its server is synchronous
and reads the request body as a mapping, so the body is read here first (async, with a
size cap) and handed to authlib as a ready ``OAuth2Request``; authlib's
``(status, body, headers)`` answers become Starlette responses. Compare
``authlib/integrations/flask_oauth2/requests.py`` and ``authorization_server.py``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from starlette.requests import Request
from starlette.responses import Response

from ssoio.devidp.sessions import ProviderSession

__all__ = ["BodyTooLarge", "DevOAuth2Request", "read_request", "to_response"]

MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The request body is over ``MAX_BODY_BYTES``."""


class _Payload(OAuth2Payload):  # type: ignore[misc]
    # Like Flask's ``request.values``: query parameters and form fields together, so the
    # authorization endpoint takes its parameters by GET or POST (OIDC Core §3.1.2.1).
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = {}
        for name, value in pairs:
            self._datalist.setdefault(name, []).append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class DevOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An ``OAuth2Request`` over an already read Starlette request.

    ``browser_session`` is the provider session of the request's cookie; ``ended_session``
    is set by the end-session endpoint, for the back-channel logout that follows.
    """

    def __init__(self, request: Request, uri: str, form: list[tuple[str, str]]) -> None:
        super().__init__(request.method, uri, headers=request.headers)
        self._args = dict(request.query_params)
        self._form = dict(form)
        self.payload = _Payload([*request.query_params.multi_items(), *form])
        self.browser_session: ProviderSession | None = None
        self.ended_session: ProviderSession | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def read_request(request: Request, origin: str) -> DevOAuth2Request:
    """Read the body (form-encoded only) and wrap the request for authlib.

    ``origin`` is the provider's configured public origin: authlib refuses plain-http
    URIs that are not loopback, and the configured URL, unlike the Host header, has been
    checked to be loopback.

    :raises BodyTooLarge:
    """
    form: list[tuple[str, str]] = []
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
        body = await _body(request)
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    query = f"?{request.url.query}" if request.url.query else ""
    return DevOAuth2Request(request, f"{origin}{request.url.path}{query}", form)


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge()
    return body


def to_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    """authlib's answer as a Starlette response (a dict body is JSON)."""
    content = json.dumps(body) if isinstance(body, dict) else str(body or "")
    response = Response(content, status_code=status)
    for name, value in headers:
        response.headers[name] = value
    return response
