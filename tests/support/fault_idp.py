"""A fault-injecting OpenID Provider: a small Starlette app served by uvicorn on 127.0.0.1.

``FakeIdp`` (behind ``httpx.MockTransport``) is enough for unit-level cases; this one is for
cases where a real HTTP peer matters: time-outs, bodies streamed past a size limit,
compressed bodies, redirects, a peer that answers slowly while others wait on it.

Each endpoint (``discovery``, ``jwks``, ``token``, ``logout``, and ``attacker``: a second
key set on the same host that a test may point discovery at) has a ``Behaviour`` the test
sets: ``ok``, ``down`` (HTTP 503: with a live server "connection refused" is hard to
arrange), ``slow`` (sleep ``delay_s``, bounded by ``MAX_DELAY_S``, then answer),
``huge`` (a body of ``size`` bytes, streamed without a Content-Length unless
``declare_length``), ``junk`` (``body`` as given, status ``status``), ``redirect`` (302 to
``location``), ``gzip_bomb`` (``size`` zero bytes, gzip-compressed), ``trickle`` (the
document one byte every ``delay_s``, each within the read timeout, none finishing it: the
attack on fetches bounded only per read). The documents served
when ``ok`` are built from ``keys``, ``extra_jwks`` (entries served beside the good keys),
``discovery_overrides`` and ``token_response``. Every request is counted by path.

::

    async with running_fault_idp([key]) as idp:
        idp.jwks.mode = "slow"; idp.jwks.delay_s = 2
        ...
        assert idp.count("jwks") == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.interop.asgi_server import serve_asgi
from tests.support.forge import SigningKey

__all__ = ["MAX_DELAY_S", "Behaviour", "FaultIdp", "running_fault_idp"]

MAX_DELAY_S: Final = 5.0
Mode = Literal["ok", "down", "slow", "huge", "junk", "redirect", "gzip_bomb", "trickle"]
Endpoint = Literal["discovery", "jwks", "token", "logout", "attacker"]
PATHS: Final[dict[str, str]] = {
    "discovery": "/.well-known/openid-configuration",
    "jwks": "/jwks",
    "token": "/token",
    "logout": "/logout",
    "attacker": "/attacker/jwks",  # another key set on the same host: never ours to trust
}


@dataclass
class Behaviour:
    """How one endpoint answers (see the module docstring)."""

    mode: Mode = "ok"
    delay_s: float = 0.0
    size: int = 0
    declare_length: bool = False
    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    location: str = ""

    def reset(self) -> None:
        fresh = Behaviour()
        for spec in fields(self):
            setattr(self, spec.name, getattr(fresh, spec.name))


@dataclass
class FaultIdp:
    """The provider's state; ``issuer`` is known once it listens (``running_fault_idp``)."""

    keys: list[SigningKey] = field(default_factory=list)
    attacker_keys: list[SigningKey] = field(default_factory=list)
    issuer: str = ""
    extra_jwks: list[Any] = field(default_factory=list)
    discovery_overrides: dict[str, Any] = field(default_factory=dict)
    token_response: dict[str, Any] = field(default_factory=dict)
    discovery: Behaviour = field(default_factory=Behaviour)
    jwks: Behaviour = field(default_factory=Behaviour)
    token: Behaviour = field(default_factory=Behaviour)
    logout: Behaviour = field(default_factory=Behaviour)
    attacker: Behaviour = field(default_factory=Behaviour)
    requests: Counter[str] = field(default_factory=Counter)
    forms: list[dict[str, str]] = field(default_factory=list)

    @property
    def jwks_uri(self) -> str:
        return self.issuer + PATHS["jwks"]

    @property
    def attacker_uri(self) -> str:
        return self.issuer + PATHS["attacker"]

    def count(self, endpoint: Endpoint) -> int:
        return self.requests[endpoint]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def reset(self) -> None:
        """Every endpoint back to ``ok``, counters to zero (keys are kept)."""
        for behaviour in self.behaviours():
            behaviour.reset()
        self.extra_jwks.clear()
        self.discovery_overrides.clear()
        self.token_response.clear()
        self.requests.clear()
        self.forms.clear()

    def behaviours(self) -> Iterator[Behaviour]:
        yield from (self.discovery, self.jwks, self.token, self.logout, self.attacker)

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": self.issuer + PATHS["token"],
            "end_session_endpoint": self.issuer + PATHS["logout"],
            "id_token_signing_alg_values_supported": ["RS256"],
            **self.discovery_overrides,
        }

    def jwks_document(self) -> dict[str, Any]:
        return {"keys": [*self.extra_jwks, *(k.jwk for k in self.keys)]}

    # -- the ASGI app -------------------------------------------------------------------------

    def app(self) -> Starlette:
        documents: dict[str, Callable[[], dict[str, Any]]] = {
            "discovery": self.discovery_document,
            "jwks": self.jwks_document,
            "token": lambda: self.token_response or {"error": "invalid_grant"},
            "logout": lambda: {"ok": True},
            "attacker": lambda: {"keys": [k.jwk for k in self.attacker_keys]},
        }

        def route(name: str) -> Route:
            async def answer(request: Request) -> Response:
                self.requests[name] += 1
                if request.method == "POST":
                    form = await request.form()
                    self.forms.append({k: str(v) for k, v in form.items()})
                behaviour: Behaviour = getattr(self, name)
                status = 400 if name == "token" and not self.token_response else 200
                return await _respond(behaviour, documents[name](), status)

            return Route(PATHS[name], answer, methods=["GET", "POST"])

        return Starlette(routes=[route(name) for name in PATHS])


async def _respond(behaviour: Behaviour, document: dict[str, Any], status: int) -> Response:
    mode = behaviour.mode
    if mode == "down":
        return JSONResponse({"error": "temporarily_unavailable"}, 503)
    if mode == "slow":
        await asyncio.sleep(min(behaviour.delay_s, MAX_DELAY_S))
        return JSONResponse(document, status)
    if mode == "junk":
        return Response(behaviour.body, behaviour.status, media_type=behaviour.content_type)
    if mode == "redirect":
        return RedirectResponse(behaviour.location, 302)
    if mode == "huge":
        return _huge(behaviour)
    if mode == "trickle":
        return _trickle(json.dumps(document).encode(), behaviour.delay_s, status)
    if mode == "gzip_bomb":
        packed = gzip.compress(b"\0" * behaviour.size)
        headers = {"content-encoding": "gzip"}
        return Response(packed, 200, media_type="application/json", headers=headers)
    return JSONResponse(document, status)


def _huge(behaviour: Behaviour) -> Response:
    """``{"keys": [...]}`` padded to ``size`` bytes; streamed, so no length is declared
    unless asked for (a reader must count the bytes itself)."""
    filler = json.dumps({"kty": "RSA", "kid": "pad", "n": "A" * 1000, "e": "AQAB"})
    count = max(1, behaviour.size // (len(filler) + 1))
    body = ('{"keys": [' + ",".join([filler] * count) + "]}").encode()
    if behaviour.declare_length:
        return Response(body, 200, media_type="application/json")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    return StreamingResponse(chunks(), 200, media_type="application/json")


def _trickle(body: bytes, delay_s: float, status: int) -> Response:
    """``body`` one byte at a time, ``delay_s`` apart (bounded by ``MAX_DELAY_S`` each);
    Starlette stops the stream when the client goes away."""

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(len(body)):
            await asyncio.sleep(min(delay_s, MAX_DELAY_S))
            yield body[index : index + 1]

    return StreamingResponse(chunks(), status, media_type="application/json")


@contextlib.asynccontextmanager
async def running_fault_idp(keys: list[SigningKey]) -> AsyncIterator[FaultIdp]:
    """A ``FaultIdp`` served on 127.0.0.1 for the block; its issuer is its base URL."""
    idp = FaultIdp(keys=list(keys))
    async with serve_asgi(idp.app()) as url:
        idp.issuer = url
        yield idp
