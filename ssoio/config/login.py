"""Configuration of browser sign-in (the OIDC authorization-code flow) and sessions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from ssoio.config.base import Section
from ssoio.config.policy import RequirementSpec

__all__ = ["AdminSettings", "LoginSettings"]


class LoginSettings(Section):
    """Browser single sign-on: ``/auth/login``, ``/auth/callback``, sessions, logout."""

    enabled: bool = True
    issuer: Annotated[str, Field(min_length=1)] | None = None  # default: the first issuer
    client_id: Annotated[str, Field(min_length=1)] = "ssoio-web"
    client_secret: SecretStr = SecretStr("")
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    session_secret: SecretStr = SecretStr("")
    session_max_age_s: float = Field(28800, gt=0)
    # how long a started sign-in may take: the life of the pre-login cookie
    login_timeout_s: float = Field(600, gt=0, le=3600)
    # signed-in sessions kept in memory (without a cluster); the oldest go when full.
    # Pending logins are not sessions: they live in their own short-lived cookie.
    max_sessions: int = Field(100_000, ge=1)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    refresh_margin_s: float = Field(60, ge=0)
    post_logout_path: Annotated[str, Field(pattern=r"^/")] = "/"
    logout_token_max_age_s: float = Field(300, gt=0)
    # GET /auth/frontchannel-logout (OIDC Front-Channel Logout 1.0) needs the provider's
    # iss and sid; false also lets a provider end the browser's own session (its cookie).
    frontchannel_logout_session_required: bool = True
    # Where GET / sends people (the landing page of `ssoio serve` otherwise): an absolute
    # http(s) URL or a path other than "/".
    landing_url: Annotated[str, Field(pattern=r"^(https?://\S+|/\S+)$")] | None = None
    # Re-validate the sessions with live sockets with the provider (a refresh) every so many
    # seconds, for providers without a logout channel; 0: off.
    session_check_s: float = Field(0, ge=0, le=86400)


class AdminSettings(Section):
    """``/admin/access``: ``explain`` as a page, for operators signed in through the
    browser flow who meet ``requires``."""

    enabled: bool = True
    requires: RequirementSpec = "role:admin"
