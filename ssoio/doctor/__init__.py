"""``ssoio doctor``: checks a configuration against its identity provider, and optionally
a token against both, printing one line per check with what was seen and what was
expected, and a concrete suggestion for each problem (issue #16).

Order: configuration; per issuer: discovery, issuer, jwks_uri, JWKS, token endpoint, the
provider family against the preset; with a token: its header (typ, alg, kid), its claims
(iss, aud, client, exp, required), what the claim mapping finds, the principal and the
decisions of the policy's literal rooms and events, and the full verification.
Exit status: 0 all ok, 1 warnings, 2 failures.
"""

from __future__ import annotations

import httpx

from ssoio.clock import Clock, system_clock
from ssoio.config.model import IssuerSettings, Settings
from ssoio.doctor.provider import check_provider
from ssoio.doctor.report import Check, Report
from ssoio.doctor.token import check_token, decisions
from ssoio.errors import SsoioError
from ssoio.oidc.compact import parse_compact
from ssoio.oidc.providers import IdentityProviders

__all__ = ["Check", "Report", "diagnose"]


async def diagnose(
    settings: Settings,
    *,
    issuer: str | None = None,
    token: str | None = None,
    http: httpx.AsyncClient | None = None,
    clock: Clock = system_clock,
    source: str = "",
) -> Report:
    """Every check of ``settings`` (the issuer named ``issuer``, else each one), and of
    ``token`` when given."""
    report = Report()
    selected = [i for i in settings.issuers if issuer is None or i.name == issuer]
    names = ", ".join(i.name for i in selected)
    report.add(
        Check(
            "configuration",
            "ok",
            f"{source or 'the configuration'} is valid; "
            f"{settings.mode} mode; issuers checked: {names}",
        )
    )
    async with httpx.AsyncClient(headers={"User-Agent": "ssoio-doctor"}) as own:
        client = http or own
        facts = {}
        for chosen in selected:
            facts[chosen.name] = await check_provider(client, settings, chosen, report)
        if token is not None:
            target = _issuer_of(token, settings, selected)
            principal = check_token(token, settings, target, facts[target.name], report, clock())
            if principal is not None:
                decisions(settings, principal, report)
            await _verify(token, settings, target, client, clock, report)
    return report


def _issuer_of(token: str, settings: Settings, selected: list[IssuerSettings]) -> IssuerSettings:
    try:
        iss = parse_compact(token, settings.tokens.max_bytes).claims.get("iss")
    except SsoioError:
        return selected[0]
    return next((i for i in selected if i.issuer == iss), selected[0])


async def _verify(
    token: str,
    settings: Settings,
    issuer: IssuerSettings,
    http: httpx.AsyncClient,
    clock: Clock,
    report: Report,
) -> None:
    """What ``ssoio serve`` itself would say of the token (signature included)."""
    only = settings.model_copy(update={"issuers": (issuer,)})
    async with IdentityProviders(only, http=http, clock=clock) as providers:
        try:
            await providers.verifier.verify(token)
        except SsoioError as refusal:
            hint = refusal.detail.get("hint")
            report.add(
                Check("verification", "fail", f"{refusal.code}: {refusal.message}", suggestion=hint)
            )
            return
    report.add(Check("verification", "ok", "signature and every claim check pass"))
