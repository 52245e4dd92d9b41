"""The gateway with a fake transport and a fake clock (``world``), for the realtime tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.engine import Policy
from ssoio.realtime.gateway import Gateway
from ssoio.settings import load_settings
from tests.policy.conftest import claims_of
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, forge

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"
ISSUER = "https://idp.test/realms/acme"


@dataclass
class FakeTransport:
    emitted: list[tuple[str, Any, Any]] = field(default_factory=list)
    rooms: dict[str, set[str]] = field(default_factory=dict)
    disconnected: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    async def emit(
        self,
        event: str,
        data: Any,
        *,
        to: str | list[str],
        namespace: str,
        ignore_queue: bool = False,
    ) -> None:
        self.emitted.append((event, data, to))

    async def enter(self, sid: str, room: str, namespace: str) -> None:
        self.rooms.setdefault(room, set()).add(sid)

    async def leave(self, sid: str, room: str, namespace: str) -> None:
        self.rooms.get(room, set()).discard(sid)

    async def disconnect(self, sid: str, namespace: str) -> None:
        self.disconnected.append(sid)

    async def close_session(self, eio_sid: str) -> None:
        self.closed.append(eio_sid)

    def to(self, target: str) -> list[tuple[str, Any]]:
        return [(e, d) for e, d, t in self.emitted if t == target or target in t]


@dataclass
class World:
    gateway: Gateway
    transport: FakeTransport
    clock: FakeClock
    token: Callable[..., str]

    async def connect(self, user: str, sid: str | None = None, **claims: Any) -> str:
        sid = sid or f"sid-{user}"
        auth = {"token": self.token(user, **claims)}
        await self.gateway.connect(sid, f"e-{sid}", "/", {"REMOTE_ADDR": "10.0.0.1"}, auth)
        return sid

    async def send(self, sid: str, event: str, payload: Any = None) -> dict[str, Any] | None:
        return await self.gateway.handle_event(sid, event, [] if payload is None else [payload])


@pytest.fixture
async def world(rsa_key: SigningKey, clock: FakeClock) -> Any:
    settings = load_settings(EXAMPLE, env={"SSOIO_ISSUER": ISSUER})
    idp = FakeIdp(issuer=ISSUER, keys=[rsa_key])
    providers = IdentityProviders(settings, clock=clock, http=idp.client())
    transport = FakeTransport()
    gateway = Gateway(settings, providers, Policy(settings), transport, clock=clock)

    def token(user: str, **overrides: Any) -> str:
        claims = {**claims_of(user), "iss": ISSUER, "aud": "ssoio-api", "iat": int(clock()),
                  "exp": int(clock()) + 300, "sid": f"idp-session-{user}", **overrides}  # fmt: skip
        return forge({"alg": "RS256", "typ": "at+jwt", "kid": rsa_key.kid}, claims, rsa_key)

    yield World(gateway, transport, clock, token)
    await providers.http.aclose()
