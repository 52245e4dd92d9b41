"""A development OpenID Provider for ``ssoio demo`` and tests. DEVELOPMENT ONLY.

Built on authlib's authorization-server components (grants, PKCE, OpenID Connect,
RP-initiated logout, userinfo) with a small Starlette adapter, and joserfc for every
signature. It serves loopback URLs in development mode only.
"""

from __future__ import annotations

from ssoio.devidp.provider import MOUNT_PATH, DevIdp

__all__ = ["MOUNT_PATH", "DevIdp"]
