"""A reloaded configuration applied to live connections, without dropping them."""

from __future__ import annotations

from ssoio.config.model import Settings
from ssoio.errors import SsoioError
from ssoio.policy.engine import Policy
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.limits import GatewayLimits
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.revocation import Revocation
from ssoio.realtime.rooms import Rooms

__all__ = ["Reloader"]


class Reloader:
    """Swaps the configuration in force and re-evaluates every connection under it."""

    def __init__(
        self, live: LiveConfig, limits: GatewayLimits, connections: Connections,
        rooms: Rooms, revocation: Revocation,
    ) -> None:  # fmt: skip
        self.live = live
        self.limits = limits
        self.connections = connections
        self.rooms = rooms
        self.revocation = revocation

    async def apply(self, settings: Settings, policy: Policy) -> dict[str, int]:
        """Each principal is mapped again from its token's claims; connections whose
        issuer is gone are disconnected (``issuer_removed``), those no longer allowed in
        their namespace too (``kicked``); rooms no longer allowed are left with
        ``room:revoked``. Returns counts for the audit record.
        """
        old = self.live.settings
        if (settings.limits, settings.realtime) != (old.limits, old.realtime):
            self.limits.use(settings.limits, settings.realtime)
        self.live.swap(settings, policy)
        issuers = {i.name: i.issuer for i in settings.issuers}
        counts = {"kept": 0, "disconnected": 0}
        for connection in self.connections:
            code = await self._reapply(connection, issuers)
            if code is None:
                counts["kept"] += 1
            else:
                await self.revocation.revoke(connection, code)
                counts["disconnected"] += 1
        return counts

    async def _reapply(self, connection: Connection, issuers: dict[str, str]) -> str | None:
        """Re-evaluate one connection; the revocation code when it must go."""
        old = connection.principal
        if issuers.get(old.issuer) != connection.claims.get("iss"):
            return "issuer_removed"
        try:
            principal = self.live.policy.principal_from_claims(connection.claims, old.issuer)
        except SsoioError:
            return "kicked"
        if not self.live.policy.namespace(principal, connection.namespace):
            return "kicked"
        self.connections.replace_principal(connection, principal)
        await self.rooms.reconcile(connection)
        return None
