"""What ``mode = "production"`` refuses, each refusal naming its key.

Development is allowed to be convenient; production is not allowed to be insecure.
"""

from __future__ import annotations

import ipaddress

from ssoio.config.model import Settings
from ssoio.errors import Problem

__all__ = ["production_problems", "trusted_proxy_problems"]

MIN_SECRET_LENGTH = 32


def production_problems(settings: Settings) -> list[Problem]:
    """Every reason ``settings`` may not run in production (empty in development)."""
    if settings.mode != "production":
        return []
    return [
        *_https(settings),
        *_sessions(settings),
        *_insecure_options(settings),
        *_origins(settings),
        *_api(settings),
        *_metrics(settings),
    ]


def _https(settings: Settings) -> list[Problem]:
    problems = []
    if not settings.server.public_url.startswith("https://"):
        problems.append(Problem("server.public_url", "must be https in production mode"))
    for index, issuer in enumerate(settings.issuers):
        urls = {"issuer": issuer.issuer, "jwks_uri": issuer.jwks_uri or ""}
        if issuer.introspection is not None:
            urls["introspection.endpoint"] = issuer.introspection.endpoint
        for key, url in urls.items():
            if url and not url.startswith("https://"):
                problems.append(
                    Problem(f"issuers[{index}].{key}", "must be https in production mode")
                )
    return problems


def _sessions(settings: Settings) -> list[Problem]:
    login = settings.login
    if not login.enabled:
        return []
    problems = []
    if len(login.session_secret.get_secret_value()) < MIN_SECRET_LENGTH:
        weak = f"must be at least {MIN_SECRET_LENGTH} random characters"
        problems.append(Problem("login.session_secret", weak))
    if login.cookie_secure == "never":
        problems.append(Problem("login.cookie_secure", "cookies must be Secure in production"))
    return problems


def _insecure_options(settings: Settings) -> list[Problem]:
    problems = []
    if settings.server.insecure_allow_query_token:
        problems.append(Problem("server.insecure_allow_query_token", "is refused in production"))
    return problems


def _origins(settings: Settings) -> list[Problem]:
    if "*" in settings.server.allowed_origins:
        return [Problem("server.allowed_origins", "'*' is refused in production")]
    return []


def _api(settings: Settings) -> list[Problem]:
    api = settings.api
    if not api.enabled:
        return []
    problems = []
    if not api.clients:
        # api.requires is usually a scope, and providers grant scopes to users as well:
        # only the token's client (client_id / azp) tells a backend from a person.
        problems.append(Problem(
            "api.clients",
            "must list the service clients allowed to call the server API in production "
            f"mode (api.requires = {api.requires!r} alone also admits user tokens with it)",
        ))  # fmt: skip
    kick_attributes = {
        name
        for rule in settings.events.values()
        if rule.kick is not None
        for name in rule.kick.same_attributes
    }
    missing = sorted(kick_attributes - set(api.disconnect.same_attributes))
    if missing:
        problems.append(Problem(
            "api.disconnect.same_attributes",
            f"lacks {', '.join(missing)}: kick events are limited by it, so API disconnects "
            "would reach across what they may not",
        ))  # fmt: skip
    return problems


def _metrics(settings: Settings) -> list[Problem]:
    # Metrics name issuers, events and error codes and count users: not for the public.
    metrics = settings.metrics
    if not metrics.enabled or metrics.bearer_token.get_secret_value():
        return []
    if not metrics.port:
        where = f"they are served on the main listener at {metrics.path}"
    elif not _is_loopback(metrics.host):
        where = f"metrics.host {metrics.host or '(the main listener address)'!s} is not loopback"
    else:
        return []
    return [Problem(
        "metrics.bearer_token",
        f"is required in production mode: {where} (or serve them on their own "
        'metrics.port with metrics.host = "127.0.0.1")',
    )]  # fmt: skip


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_proxy_problems(settings: Settings) -> list[Problem]:
    """Each trusted proxy is an IP address or network (CIDR)."""
    problems = []
    for index, value in enumerate(settings.server.trusted_proxies):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            problems.append(Problem(f"server.trusted_proxies[{index}]", "is not an IP or network"))
    return problems
