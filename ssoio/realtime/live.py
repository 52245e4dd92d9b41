"""The configuration in force on this node, shared by the gateway's parts and swapped
as one on a reload (``reload.Reloader``)."""

from __future__ import annotations

from ssoio.config.model import Settings
from ssoio.policy.engine import Policy
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.origins import OriginPolicy

__all__ = ["LiveConfig"]


class LiveConfig:
    """Settings, the compiled policy and what is derived from them, always consistent."""

    def __init__(self, settings: Settings, policy: Policy) -> None:
        self.swap(settings, policy)

    def swap(self, settings: Settings, policy: Policy) -> None:
        self.settings, self.policy = settings, policy
        self.origins = OriginPolicy(settings.server.public_url, settings.server.allowed_origins)
        self._relay_visibility = {
            e.rule.deliver_as: e.visibility for e in policy.events if e.rule.deliver_as
        }

    def relay_visibility(self, event: str) -> FieldVisibility | None:
        """The field visibility of a relayed event (by the name recipients see)."""
        return self._relay_visibility.get(event)
