"""Checks that span several keys, each returning ``Problem``s with key paths.

Field-level checks (types, ranges, unknown keys) are pydantic's; these run on a
model that parsed, so that together every problem is reported at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from ssoio.config.model import Settings
from ssoio.config.production import production_problems, trusted_proxy_problems
from ssoio.errors import Problem

__all__ = ["semantic_problems"]


def semantic_problems(
    settings: Settings, added: Sequence[Callable[[Settings], list[Problem]]] = ()
) -> list[Problem]:
    """Every cross-field problem of ``settings``, with those of the ``added`` checks
    (``checks.Checks.problems``: the policy's)."""
    return [
        *_duplicates(settings),
        *_introspection(settings),
        *_key_cache(settings),
        *(problem for check in added for problem in check(settings)),
        *_login(settings),
        *_recovery(settings),
        *_operations(settings),
        *_http_edge(settings),
        *trusted_proxy_problems(settings),
        *production_problems(settings),
    ]


def _operations(settings: Settings) -> list[Problem]:
    problems = []
    if settings.logging.destination == "file" and not settings.logging.file:
        problems.append(Problem("logging.file", "is required when logging.destination is file"))
    tls = settings.server.tls
    if bool(tls.cert_file) != bool(tls.key_file):
        problems.append(Problem("server.tls", "cert_file and key_file go together"))
    if settings.metrics.port and settings.metrics.port == settings.server.port:
        problems.append(Problem("metrics.port", "must differ from server.port (0: same listener)"))
    return problems


def _http_edge(settings: Settings) -> list[Problem]:
    server = settings.server
    problems = []
    # RFC 6750 §2.1: a client sends its token in one header line, "Authorization: Bearer"
    token_line = settings.tokens.max_bytes + 1024
    if server.max_header_line_bytes < token_line:
        needed = f"must be at least tokens.max_bytes + 1024 ({token_line})"
        problems.append(Problem("server.max_header_line_bytes", needed))
    head = server.max_request_line_bytes + server.max_header_line_bytes
    if server.max_header_bytes < head:
        needed = f"must be at least max_request_line_bytes + max_header_line_bytes ({head})"
        problems.append(Problem("server.max_header_bytes", needed))
    return problems


def _login(settings: Settings) -> list[Problem]:
    login = settings.login
    problems = []
    if login.issuer is not None and settings.issuer_named(login.issuer) is None:
        problems.append(Problem("login.issuer", f"no issuer is named {login.issuer!r}"))
    if "openid" not in login.scopes:
        problems.append(Problem("login.scopes", "must include openid"))
    if login.enabled and settings.cluster.enabled and not login.session_secret.get_secret_value():
        # every node must sign cookies and encrypt shared sessions with the same key
        problems.append(Problem("login.session_secret", "is required with cluster.redis_url"))
    return problems


def _recovery(settings: Settings) -> list[Problem]:
    # The CONNECT answer's pid and the hold of live packets while missed ones are replayed
    # need ssoio's Socket.IO server class (ssoio.transport.server.SocketServer); the
    # stock one has no public seam for either.
    if settings.recovery.enabled and settings.server.transport == "stock":
        return [Problem("recovery.enabled", 'needs server.transport = "ssoio"')]
    return []


def _duplicates(settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    for attribute in ("name", "issuer"):
        counts = Counter(getattr(i, attribute) for i in settings.issuers)
        for index, issuer in enumerate(settings.issuers):
            if counts[getattr(issuer, attribute)] > 1:
                problems.append(
                    Problem(f"issuers[{index}].{attribute}", "is used by more than one issuer")
                )
    return problems


def _introspection(settings: Settings) -> list[Problem]:
    # An opaque token names no issuer; sending it to several providers would leak one
    # provider's tokens to another, so only one issuer may introspect.
    users = [i for i, issuer in enumerate(settings.issuers) if issuer.introspection]
    return [
        Problem(f"issuers[{index}].introspection", "only one issuer may use introspection")
        for index in users[1:]
    ]


def _key_cache(settings: Settings) -> list[Problem]:
    return [
        Problem(f"issuers[{index}].keys.stale_limit_s", "must be at least keys.jwks_ttl_s")
        for index, issuer in enumerate(settings.issuers)
        if issuer.keys.stale_limit_s < issuer.keys.jwks_ttl_s
    ]
