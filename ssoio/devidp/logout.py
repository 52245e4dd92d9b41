"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) from the provider's side.

When a provider session ends, every client it signed in to that registered a
``backchannel_logout_uri`` gets a logout token by form POST (§2.5), before the browser is
redirected anywhere. A relying party that is down or refuses must not stop the logout,
so failures are logged, never raised; each POST is bounded in time.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from ssoio.devidp.clients import DevClient
from ssoio.devidp.directory import Directory
from ssoio.devidp.sessions import ProviderSession
from ssoio.devidp.tokens import TokenSigner

__all__ = ["BackchannelLogout"]

log = logging.getLogger(__name__)


class BackchannelLogout:
    """Sends logout tokens.

    :param http: the client to POST with; by default a short-lived one per logout, which
        ignores proxy settings from the environment (the relying parties of a loopback
        provider are local).
    :param timeout_s: the most one POST may take, connection included.
    """

    def __init__(
        self,
        signer: TokenSigner,
        directory: Directory,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._signer = signer
        self._directory = directory
        self._http = http
        self._timeout_s = timeout_s

    def targets(self, session: ProviderSession) -> list[DevClient]:
        """The clients this session signed in to that take back-channel logout (§2.7)."""
        clients = (self._directory.clients.get(c) for c in sorted(session.clients))
        return [c for c in clients if c is not None and c.backchannel_logout_uri]

    async def notify(self, session: ProviderSession) -> None:
        """POST a logout token to each target, concurrently; returns when all answered."""
        targets = self.targets(session)
        if not targets:
            return
        if self._http is not None:
            await self._post_all(self._http, targets, session)
            return
        async with httpx.AsyncClient(trust_env=False, timeout=self._timeout_s) as http:
            await self._post_all(http, targets, session)

    async def _post_all(
        self, http: httpx.AsyncClient, targets: list[DevClient], session: ProviderSession
    ) -> None:
        await asyncio.gather(*(self._post(http, client, session) for client in targets))

    async def _post(
        self, http: httpx.AsyncClient, client: DevClient, session: ProviderSession
    ) -> None:
        uri = client.backchannel_logout_uri or ""
        token = self._signer.logout_token(client.client_id, session.user.username, session.sid)
        fields = {"client": client.client_id, "sid": session.sid}
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await http.post(uri, data={"logout_token": token})
        except Exception as exc:  # any failure: log it, and let the logout go on
            log.warning("devidp.backchannel.failed %s reason=%s", _kv(fields), type(exc).__name__)
            return
        # §2.8: the RP answers 200 (or 204) when it logged the session out.
        level = logging.INFO if response.status_code in (200, 204) else logging.WARNING
        log.log(level, "devidp.backchannel.sent %s status=%d", _kv(fields), response.status_code)


def _kv(fields: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in fields.items())
