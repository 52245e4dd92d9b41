"""``DevIdp``: the development OpenID Provider, assembled.

Mounted by ``ssoio demo`` under ssoio's own origin (so its issuer is
``<public_url>/dev-idp``) and used by fast tests. Loopback and development mode only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette

from ssoio.clock import Clock, system_clock
from ssoio.devidp.app import Routes
from ssoio.devidp.directory import Directory, load_directory
from ssoio.devidp.keys import SigningKeys
from ssoio.devidp.logout import BackchannelLogout
from ssoio.devidp.metadata import provider_metadata
from ssoio.devidp.safety import check_safe
from ssoio.devidp.server import DevAuthorizationServer
from ssoio.devidp.sessions import Sessions
from ssoio.devidp.tokens import TokenSigner

__all__ = ["MOUNT_PATH", "DevIdp"]

MOUNT_PATH = "/dev-idp"

log = logging.getLogger(__name__)


class DevIdp:
    """The development provider: users and clients from ``directory``, keys made at start.

    :param public_url: ssoio's public URL (``server.public_url``); must be loopback.
    :param mode: ssoio's ``mode``; must be ``"development"``.
    :param audience: the ``aud`` of access tokens (an ``issuers[].audiences`` entry).
    :param at_ttl: access token lifetime in seconds.
    :param clock: the time source of every token and code.
    :param http: client for back-channel logout POSTs (default: one per logout).
    :param mount_path: where the app is mounted under ``public_url``.
    :raises ConfigError: in production mode or for a non-loopback ``public_url``.
    """

    def __init__(
        self,
        directory: Directory,
        public_url: str,
        *,
        mode: str,
        audience: str = "ssoio-api",
        at_ttl: int = 300,
        clock: Clock = system_clock,
        http: httpx.AsyncClient | None = None,
        mount_path: str = MOUNT_PATH,
    ) -> None:
        check_safe(public_url, mode)
        self.issuer = f"{public_url.rstrip('/')}{mount_path}"
        parts = urlsplit(self.issuer)
        self.directory = directory
        self.keys = SigningKeys()
        self.sessions = Sessions(clock)
        signer = TokenSigner(self.issuer, audience, self.keys, clock, at_ttl)
        self.server = DevAuthorizationServer(directory, self.keys, signer, self.sessions, clock)
        self.metadata: dict[str, Any] = provider_metadata(self.issuer, directory.scopes)
        self._routes = Routes(
            server=self.server,
            keys=self.keys,
            backchannel=BackchannelLogout(signer, directory, http),
            metadata=self.metadata,
            origin=f"{parts.scheme}://{parts.netloc}",
            cookie_path=parts.path,  # as the browser sees it, behind a path prefix too
            rotate_keys=self.rotate_keys,
        )
        self.asgi_app: Starlette = self._routes.app()
        log.warning(
            "devidp.started DEVELOPMENT ONLY: anyone can sign in as any user without a "
            "password; never expose it. issuer=%s users=%s",
            self.issuer,
            ",".join(directory.users),
        )

    @classmethod
    def from_files(
        cls,
        users_path: str | Path,
        public_url: str,
        *,
        mode: str,
        audience: str = "ssoio-api",
        at_ttl: int = 300,
        clock: Clock = system_clock,
        http: httpx.AsyncClient | None = None,
    ) -> DevIdp:
        """A provider for the users and clients of ``users_path`` (``config/dev-users.toml``).

        :raises ConfigError: unsafe settings (checked before the file is read) or a bad file.
        """
        check_safe(public_url, mode)
        directory = load_directory(users_path, public_url)
        return cls(
            directory,
            public_url,
            mode=mode,
            audience=audience,
            at_ttl=at_ttl,
            clock=clock,
            http=http,
        )

    def rotate_keys(self) -> str:
        """The rotation command: a new key signs from now on; the old one stays published.

        :returns: the new key's ``kid``.
        """
        return self.keys.rotate()
