"""The development IdP served by uvicorn on 127.0.0.1, as ``ssoio demo`` mounts it, next to a
back-channel logout receiver standing in for ssoio (``/auth/backchannel-logout``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ssoio.devidp import MOUNT_PATH, DevIdp
from tests.interop.asgi_server import serve_asgi

__all__ = ["USERS_FILE", "Receiver", "Running", "http_client", "running_idp"]

USERS_FILE = Path(__file__).resolve().parents[2] / "config" / "dev-users.toml"
HTTP_TIMEOUT_S = 5.0


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """A client for 127.0.0.1: bounded waits, and no proxy from the environment."""
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, trust_env=False, **kwargs)


@dataclass
class Receiver:
    """Records back-channel logout POSTs; answers ``status``."""

    status: int = 200
    forms: asyncio.Queue[dict[str, list[str]]] = field(default_factory=asyncio.Queue)

    async def handle(self, request: Request) -> Response:
        await self.forms.put(parse_qs((await request.body()).decode("utf-8")))
        return Response(status_code=self.status)

    async def next_form(self) -> dict[str, list[str]]:
        return await asyncio.wait_for(self.forms.get(), HTTP_TIMEOUT_S)


@dataclass
class Running:
    url: str
    idp: DevIdp
    receiver: Receiver

    @property
    def issuer(self) -> str:
        return self.idp.issuer


@contextlib.asynccontextmanager
async def running_idp(**options: Any) -> AsyncIterator[Running]:
    """Serve a fresh dev IdP at ``<url>/dev-idp`` (the issuer) for the block."""
    receiver = Receiver()
    outer = Starlette(routes=[Route("/auth/backchannel-logout", receiver.handle, methods=["POST"])])
    async with serve_asgi(outer) as url, http_client() as http:
        # The issuer depends on the port the OS picked, so the IdP is mounted once it is known.
        idp = DevIdp.from_files(USERS_FILE, url, mode="development", http=http, **options)
        outer.mount(MOUNT_PATH, idp.asgi_app)
        yield Running(url, idp, receiver)
