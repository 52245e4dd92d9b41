"""Configuration of running several ssoio nodes together over Redis."""

from __future__ import annotations

from pydantic import Field

from ssoio.config.base import Section

__all__ = ["ClusterSettings"]


class ClusterSettings(Section):
    """Off (single node) unless ``redis_url`` is set."""

    redis_url: str = ""
    channel: str = Field("ssoio", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    node_id: str = Field("", pattern=r"^[A-Za-z0-9_.:-]{0,64}$")  # "": host name + pid
    request_timeout_s: float = Field(0.5, gt=0, le=10)
    heartbeat_s: float = Field(5, gt=0, le=60)

    @property
    def enabled(self) -> bool:
        return bool(self.redis_url)
