"""``ssoio doctor --token``: the token's header and claims against the configuration, what
the claim mapping finds, the principal and a few decisions (RFC 9068, RFC 7519)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ssoio.config.model import IssuerSettings, Settings
from ssoio.config.policy import ClaimMappingSettings
from ssoio.doctor.provider import ProviderFacts
from ssoio.doctor.report import Check, Report
from ssoio.errors import SsoioError
from ssoio.oidc.claims import ClaimRules, authorized_party, check_token_type
from ssoio.oidc.compact import CompactJWS, parse_compact
from ssoio.oidc.mismatch import clip, issuer_difference
from ssoio.policy.engine import Policy
from ssoio.policy.explain import Question, explain
from ssoio.policy.mapping import ClaimMapping, delimited_claims, map_claims
from ssoio.policy.presets import PRESETS
from ssoio.policy.principal import Principal

__all__ = ["check_token", "decisions"]

# Where each product lets an operator put ssoio's audience into its access tokens.
_AUDIENCE_AT = {
    "keycloak": 'an "Audience" mapper on the client (Included Custom Audience = {aud})',
    "entra": "the API's Application ID URI ({aud}), requested by the client as {aud}/.default",
    "okta": "the authorization server's Audience setting ({aud})",
    "auth0": "an API with Identifier {aud}, requested with audience={aud}",
    "lemonldap": 'the relying party\'s "additional audiences" ({aud})',
    "generic": "an API / resource {aud} at the provider, requested by the client",
}


def check_token(
    token: str,
    settings: Settings,
    issuer: IssuerSettings,
    facts: ProviderFacts,
    report: Report,
    now: float,
) -> Principal | None:
    """Add the token's checks to ``report``; the principal it maps to, if it does."""
    try:
        jws = parse_compact(token, settings.tokens.max_bytes)
    except SsoioError as refusal:
        report.add(Check("token", "fail", f"{refusal.code}: {refusal.message}"))
        return None
    rules = ClaimRules.from_settings(issuer, settings.tokens.max_lifetime_s)
    _header(jws, issuer, rules, facts, report)
    family = facts.family.preset if facts.family else "generic"
    _claims(jws.claims, issuer, rules, family, report, now)
    return _mapping(jws.claims, settings, issuer, family, report)


def _header(
    jws: CompactJWS,
    issuer: IssuerSettings,
    rules: ClaimRules,
    facts: ProviderFacts,
    report: Report,
) -> None:
    typ = jws.header.get("typ")
    try:
        check_token_type(jws.header, rules)
        report.add(Check("token typ", "ok", f"{typ or '(none)'} is accepted"))
    except SsoioError as refusal:
        hint = refusal.detail.get("hint", "")
        suggestion = 'token_types = ["at+jwt", "JWT"]' if "compatible" in hint else hint
        report.add(
            Check(
                "token typ",
                "fail",
                refusal.message,
                seen=clip(typ),
                expected=list(issuer.token_types),
                suggestion=suggestion,
            )
        )
    if jws.alg in issuer.algorithms:
        report.add(Check("token alg", "ok", f"{jws.alg} is allowed"))
    else:
        allowed = [*issuer.algorithms, jws.alg]
        report.add(
            Check(
                "token alg",
                "fail",
                "the signing algorithm is not allowed",
                seen=clip(jws.alg),
                expected=list(issuer.algorithms),
                suggestion=_toml_list("algorithms", allowed),
            )
        )
    _kid(jws.kid, facts, report)


def _kid(kid: str | None, facts: ProviderFacts, report: Report) -> None:
    if kid in facts.kids or (kid is None and len(facts.kids) == 1):
        report.add(Check("token kid", "ok", f"{kid or '(none)'} is published"))
    else:
        report.add(
            Check(
                "token kid",
                "fail",
                "the provider does not publish this key",
                seen=clip(kid),
                expected=facts.kids,
                suggestion="get a fresh token: this one was signed by a key from before "
                "a rotation, or by another realm or provider",
            )
        )


def _claims(
    claims: Mapping[str, Any],
    issuer: IssuerSettings,
    rules: ClaimRules,
    family: str,
    report: Report,
    now: float,
) -> None:
    _iss(claims.get("iss"), issuer, report)
    _aud(claims.get("aud"), issuer, family, report)
    party = authorized_party(claims)
    if issuer.authorized_parties and party not in issuer.authorized_parties:
        report.add(
            Check(
                "token client",
                "fail",
                "issued to a client that is not allowed",
                seen=clip(party),
                expected=list(issuer.authorized_parties),
                suggestion=f'authorized_parties = [..., "{party}"] if it is yours',
            )
        )
    else:
        report.add(Check("token client", "ok", f"issued to {clip(party) or '(not named)'}"))
    _exp(claims, rules, report, now)
    missing = [name for name in rules.required if claims.get(name) is None]
    if missing:
        report.add(
            Check(
                "token claims",
                "fail",
                "required claims are missing",
                seen=missing,
                expected=list(rules.required),
                suggestion='token_types = ["at+jwt", "JWT"] (strict RFC 9068 mode '
                "requires client_id and jti)"
                if {"client_id", "jti"} & set(missing) and rules.strict_rfc9068
                else "remove them from required_claims",
            )
        )


def _iss(iss: Any, issuer: IssuerSettings, report: Report) -> None:
    if iss == issuer.issuer:
        report.add(Check("token iss", "ok", f"{iss}"))
        return
    difference = issuer_difference(iss, issuer.issuer) if isinstance(iss, str) else None
    report.add(
        Check(
            "token iss",
            "fail",
            difference or "the token is from another issuer",
            seen=clip(iss),
            expected=issuer.issuer,
            suggestion=f'issuer = "{iss}"' if difference else None,
        )
    )


def _aud(aud: Any, issuer: IssuerSettings, family: str, report: Report) -> None:
    values = [aud] if isinstance(aud, str) else aud
    if isinstance(values, list) and set(values) & set(issuer.audiences):
        report.add(Check("token aud", "ok", ", ".join(map(str, values))))
        return
    wanted = issuer.audiences[0]
    where = _AUDIENCE_AT.get(family, _AUDIENCE_AT["generic"]).format(aud=wanted)
    report.add(
        Check(
            "token aud",
            "fail",
            "the token is not meant for ssoio",
            seen=clip(aud),
            expected=list(issuer.audiences),
            suggestion=f'have the provider add "{wanted}" to aud: {where}',
        )
    )


def _exp(claims: Mapping[str, Any], rules: ClaimRules, report: Report, now: float) -> None:
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        report.add(Check("token exp", "fail", "no numeric exp", seen=clip(exp)))
        return
    left = exp - now
    if left + rules.leeway_s < 0:
        report.add(
            Check(
                "token exp",
                "fail",
                f"expired {-left:.0f} s ago",
                seen=exp,
                expected=f"after {now:.0f} - leeway {rules.leeway_s:g} s",
                suggestion="get a fresh token; if it is fresh, check this host's clock",
            )
        )
    elif not math.isinf(rules.max_lifetime_s) and left > rules.max_lifetime_s:
        report.add(
            Check(
                "token exp",
                "fail",
                f"valid for {left:.0f} s, above the maximum",
                seen=exp,
                expected=f"tokens.max_lifetime_s = {rules.max_lifetime_s:g}",
            )
        )
    else:
        report.add(
            Check("token exp", "ok", f"expires in {left:.0f} s (leeway {rules.leeway_s:g} s)")
        )


def _mapping(
    claims: Mapping[str, Any],
    settings: Settings,
    issuer: IssuerSettings,
    family: str,
    report: Report,
) -> Principal | None:
    chosen = family if issuer.claims.preset == "auto" else None
    mapping = ClaimMapping.resolve(issuer.claims, chosen)
    try:
        principal = map_claims(claims, mapping, issuer.name)
    except SsoioError as refusal:
        report.add(
            Check(
                "claims",
                "fail",
                refusal.message,
                suggestion="point the mapping at a string or an array of strings",
            )
        )
        return None
    _paths(claims, mapping, principal, report)
    _better_preset(claims, issuer, principal, report)
    for found in delimited_claims(claims, mapping):
        report.add(
            Check(
                f"claims {found.field}",
                "warn",
                f"{found.path} is one string holding {found.parts} values separated by "
                f"{found.separator!r}; taken as one value",
                suggestion=found.suggestion,
            )
        )
    return principal


def _paths(
    claims: Mapping[str, Any], mapping: ClaimMapping, principal: Principal, report: Report
) -> None:
    single = {
        "subject": principal.subject,
        "username": principal.username,
        "email": principal.email,
        "client_id": principal.client_id,
    }
    for name, value in single.items():
        report.add(Check(f"claims {name}", "ok", f"{getattr(mapping, name)} -> {value or '-'}"))
    for name in ("roles", "groups", "scopes"):
        paths = ", ".join(getattr(mapping, name)) or "(no path)"
        values = ", ".join(sorted(getattr(principal, name))) or "(none)"
        report.add(Check(f"claims {name}", "ok", f"{paths} -> {values}"))
    for name, path in mapping.attributes.items():
        found = principal.attributes.get(name, ())
        if found:
            report.add(Check(f"claims {name}", "ok", f"{path} -> {', '.join(found)}"))
        else:
            report.add(
                Check(
                    f"claims {name}",
                    "warn",
                    f"{path} is absent: rules using {{{name}}} deny",
                    suggestion=f"release {path} in access tokens, or map "
                    f"attributes.{name} to the claim that holds it",
                )
            )


def _better_preset(
    claims: Mapping[str, Any], issuer: IssuerSettings, principal: Principal, report: Report
) -> None:
    """A preset whose paths find roles or groups the configured mapping misses."""
    found = len(principal.roles) + len(principal.groups)
    best, best_found = None, found
    for name in PRESETS:
        try:
            other = map_claims(claims, ClaimMapping.resolve(ClaimMappingSettings(preset=name)), "x")
        except SsoioError:
            continue
        count = len(other.roles) + len(other.groups)
        if count > best_found and (
            (other.roles and not principal.roles) or (other.groups and not principal.groups)
        ):
            best, best_found = name, count
    if best is not None:
        report.add(
            Check(
                "claims preset",
                "warn",
                f"the {best} preset finds {best_found} roles "
                f"and groups in this token, the configured mapping {found}",
                seen=issuer.claims.preset,
                expected=best,
                suggestion=f'preset = "{best}"',
            )
        )


def decisions(settings: Settings, principal: Principal, report: Report) -> None:
    """The principal and what it may do: auto-joined rooms, every literal room, every event."""
    policy = Policy(settings)
    rooms = [r.pattern for r in settings.rooms if "{" not in r.pattern and "*" not in r.pattern]
    questions = [Question(room=room) for room in rooms]
    questions += [Question(event=name) for name in settings.events if "*" not in name]
    answer = explain(policy, principal, questions)
    p = principal
    parts = [("roles", sorted(p.roles)), ("groups", sorted(p.groups)),
             ("scopes", sorted(p.scopes)), ("auto-join", list(answer.auto_join))]  # fmt: skip
    shown = "; ".join(f"{name} {', '.join(values) or '-'}" for name, values in parts)
    report.add(Check("principal", "info", f"{p.subject}: {shown}"))
    for question, decision in answer.answers:
        verdict = "allow" if decision.allowed else "deny"
        report.add(Check("decision", "info", f"{question.text}: {verdict}: {decision.reason}"))


def _toml_list(key: str, values: list[str]) -> str:
    return f"{key} = [" + ", ".join(f'"{v}"' for v in values) + "]"
