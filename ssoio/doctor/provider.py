"""``ssoio doctor``'s provider checks: discovery, issuer, jwks_uri, JWKS, token endpoint and
the provider family against the configured preset (OIDC Discovery 1.0, RFC 7517)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ssoio.config.model import IssuerSettings, Settings
from ssoio.doctor.report import Check, Report
from ssoio.errors import IdpUnavailable
from ssoio.oidc.discovery import discovery_url
from ssoio.oidc.families import Family, guess_family
from ssoio.oidc.http import fetch_json
from ssoio.oidc.jwks import parse_jwks
from ssoio.oidc.mismatch import issuer_difference

__all__ = ["ProviderFacts", "check_provider"]

_MAX_DISCOVERY_BYTES = 256 * 1024
_KEY_FAMILIES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}


@dataclass(slots=True)
class ProviderFacts:
    """What the provider checks learnt, for the token checks."""

    metadata: dict[str, Any] | None = None
    kids: list[str] = field(default_factory=list)
    family: Family | None = None


async def check_provider(
    http: httpx.AsyncClient, settings: Settings, issuer: IssuerSettings, report: Report
) -> ProviderFacts:
    """Run the provider checks in order, adding one line each to ``report``."""
    facts = ProviderFacts()
    facts.metadata = await _discovery(http, issuer, report)
    if facts.metadata is None:
        return facts
    _issuer(facts.metadata, issuer, report)
    jwks_uri = _jwks_uri(facts.metadata, settings, issuer, report)
    if jwks_uri is not None:
        facts.kids = await _jwks(http, jwks_uri, issuer, report)
    await _token_endpoint(http, facts.metadata, issuer, report)
    facts.family = _family(facts.metadata, issuer, report)
    if settings.login.enabled and issuer.name == settings.login_issuer.name:
        _logout(facts.metadata, settings, report)
    return facts


def _logout(metadata: dict[str, Any], settings: Settings, report: Report) -> None:
    """Which logout channel to register at the provider (what its discovery document says
    it supports: Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3): it decides how
    fast sockets close after a logout there (docs/providers.md)."""
    base = settings.server.public_url.rstrip("/")
    if metadata.get("backchannel_logout_supported") is True:
        message = (
            f"back-channel: register {base}/auth/backchannel-logout with the session "
            "required; sockets close at once after a logout at the provider"
        )
    elif metadata.get("frontchannel_logout_supported") is True:
        message = (
            f"front-channel only: register {base}/auth/frontchannel-logout with the "
            "session required; sockets close when the provider's logout page loads it"
        )
    else:
        message = (
            "no logout channel published: a logout at the provider is seen at the "
            "next refresh; login.session_check_s bounds the delay"
        )
    report.add(Check("logout", "info", message))


async def _discovery(
    http: httpx.AsyncClient, issuer: IssuerSettings, report: Report
) -> dict[str, Any] | None:
    url = discovery_url(issuer.issuer)
    try:
        document = await fetch_json(
            http, url, max_bytes=_MAX_DISCOVERY_BYTES, timeout_s=issuer.keys.http_timeout_s
        )
    except IdpUnavailable as exc:
        reason = exc.detail.get("seen", {}).get("reason", exc.message)
        report.add(
            Check(
                "discovery",
                "fail",
                f"{url} did not answer: {reason}",
                suggestion="check issuers.issuer and that this host reaches the "
                "provider (DNS, proxy, firewall, TLS); is the provider running?",
            )
        )
        return None
    report.add(Check("discovery", "ok", f"{url} answered"))
    return document


def _issuer(metadata: dict[str, Any], issuer: IssuerSettings, report: Report) -> None:
    seen = metadata.get("issuer")
    if seen == issuer.issuer:
        report.add(Check("issuer", "ok", f"the provider names itself {seen}"))
        return
    difference = issuer_difference(seen, issuer.issuer) if isinstance(seen, str) else None
    message = "the discovery document names another issuer"
    if difference is not None:
        message += f": {difference}"
    report.add(
        Check(
            "issuer",
            "fail",
            message,
            seen=seen,
            expected=issuer.issuer,
            suggestion=f'issuer = "{seen}"' if isinstance(seen, str) else None,
        )
    )


def _jwks_uri(
    metadata: dict[str, Any], settings: Settings, issuer: IssuerSettings, report: Report
) -> str | None:
    uri = issuer.jwks_uri or metadata.get("jwks_uri")
    if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
        report.add(
            Check(
                "jwks_uri",
                "fail",
                "the discovery document has no usable jwks_uri",
                seen=uri,
                suggestion="set issuers.jwks_uri",
            )
        )
        return None
    where = "configured" if issuer.jwks_uri else "from discovery"
    parts, home = urlsplit(uri), urlsplit(issuer.issuer)
    if settings.mode == "production" and parts.scheme != "https":
        report.add(
            Check(
                "jwks_uri",
                "fail",
                f"{uri} ({where}) is not https in production",
                seen=parts.scheme,
                expected="https",
                suggestion="serve the provider over https",
            )
        )
    elif parts.hostname != home.hostname:
        report.add(
            Check(
                "jwks_uri",
                "warn",
                f"{uri} ({where}) is on another host than the issuer",
                seen=parts.hostname,
                expected=home.hostname,
                suggestion="make sure that host is the provider's",
            )
        )
    else:
        report.add(Check("jwks_uri", "ok", f"{uri} ({where}), same host as the issuer"))
    return uri


async def _jwks(
    http: httpx.AsyncClient, uri: str, issuer: IssuerSettings, report: Report
) -> list[str]:
    try:
        document = await fetch_json(
            http, uri, max_bytes=issuer.keys.max_jwks_bytes, timeout_s=issuer.keys.http_timeout_s
        )
    except IdpUnavailable as exc:
        reason = exc.detail.get("seen", {}).get("reason", exc.message)
        report.add(Check("jwks", "fail", f"{uri} did not answer: {reason}"))
        return []
    entries = document.get("keys")
    if not isinstance(entries, list):
        report.add(Check("jwks", "fail", f"{uri} is not a JWK set (no keys array)"))
        return []
    usable = [e for e in entries if _usable(e, issuer)]
    described = "; ".join(_describe(e, issuer) for e in entries) or "no keys"
    kids = [str(e.get("kid")) for e in usable if isinstance(e, dict) and e.get("kid")]
    fitting = [a for a in issuer.algorithms if any(_fits(e, a) for e in usable)]
    if not usable:
        report.add(Check("jwks", "fail", f"no usable signing key: {described}"))
    elif not fitting:
        offered = sorted({str(e.get("alg")) for e in usable if e.get("alg")}) or ["RS256"]
        report.add(
            Check(
                "jwks",
                "fail",
                f"no key for the configured algorithms: {described}",
                seen=offered,
                expected=list(issuer.algorithms),
                suggestion=f"algorithms = {_toml_list(offered)}",
            )
        )
    else:
        weak = any(_weak(e) for e in usable)
        report.add(
            Check(
                "jwks",
                "warn" if weak else "ok",
                described,
                suggestion="use keys of 2048 bits or more" if weak else None,
            )
        )
    return kids


def _usable(entry: Any, issuer: IssuerSettings) -> bool:
    try:
        parse_jwks({"keys": [entry]}, 1)
    except IdpUnavailable:
        return False
    return True


def _describe(entry: Any, issuer: IssuerSettings) -> str:
    if not isinstance(entry, dict):
        return "an entry that is not an object (unusable)"
    kid, kty = entry.get("kid", "(no kid)"), entry.get("kty", "?")
    text = f"{kid} {kty}{_size(entry)} {entry.get('alg', '(no alg)')}"
    why = _why_unusable(entry) if not _usable(entry, issuer) else None
    if why:
        return f"{text} unusable: {why}"
    return text + (" (under 2048 bits)" if _weak(entry) else "")


def _why_unusable(entry: dict[str, Any]) -> str:
    if entry.get("use", "sig") != "sig":
        return f"use {entry.get('use')} (encryption)"
    ops = entry.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return "key_ops without verify"
    if entry.get("kty") not in ("RSA", "EC", "OKP", "oct"):
        return f"unknown kty {entry.get('kty')!r}"
    return "cannot be imported (malformed or too weak)"


def _size(entry: dict[str, Any]) -> str:
    if entry.get("kty") == "RSA" and isinstance(entry.get("n"), str):
        return f" {_bits(entry['n'])}"
    if isinstance(entry.get("crv"), str):
        return f" {entry['crv']}"
    return ""


def _bits(n: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _weak(entry: Any) -> bool:
    n = entry.get("n") if isinstance(entry, dict) else None
    return entry.get("kty") == "RSA" and isinstance(n, str) and _bits(n) < 2048


def _fits(entry: Any, alg: str) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("kty") == _KEY_FAMILIES.get(alg[:2])
        and entry.get("alg") in (None, alg)
    )


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


async def _token_endpoint(
    http: httpx.AsyncClient, metadata: dict[str, Any], issuer: IssuerSettings, report: Report
) -> None:
    url = metadata.get("token_endpoint")
    if not isinstance(url, str):
        report.add(
            Check(
                "token endpoint",
                "warn",
                "the discovery document names none",
                suggestion="browser sign-in needs one; check the provider",
            )
        )
        return
    try:
        # an empty token request: RFC 6749 §5.2 answers it 400 (or 401), which shows the
        # endpoint is there without asking anything of it
        answer = await http.post(
            url, data={}, timeout=issuer.keys.http_timeout_s, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        report.add(
            Check(
                "token endpoint",
                "warn",
                f"{url} did not answer: {type(exc).__name__}",
                suggestion="browser sign-in and refresh need it reachable",
            )
        )
        return
    status = answer.status_code
    if status == 404 or status >= 500:
        report.add(
            Check(
                "token endpoint",
                "warn",
                f"{url} answered HTTP {status}",
                expected="HTTP 400 or 401 to an empty token request",
                suggestion="check the provider's token_endpoint",
            )
        )
        return
    report.add(Check("token endpoint", "ok", f"{url} answered HTTP {status}"))


def _family(metadata: dict[str, Any], issuer: IssuerSettings, report: Report) -> Family:
    family = guess_family(metadata)
    preset = issuer.claims.preset
    found = f"{family.product} ({family.evidence})"
    if preset == "auto":
        report.add(Check("preset", "ok", f'"auto" picks {family.preset}: {found}'))
    elif preset == family.preset:
        report.add(Check("preset", "ok", f"{preset} for {found}"))
    elif family.preset == "generic":
        report.add(
            Check(
                "preset",
                "ok",
                f"{preset}; the provider is not one ssoio knows by its "
                "metadata, so check a token's claims (--token)",
            )
        )
    else:
        report.add(
            Check(
                "preset",
                "warn",
                f"the provider looks like {found}",
                seen=preset,
                expected=family.preset,
                suggestion=f'preset = "{family.preset}"',
            )
        )
    return family
