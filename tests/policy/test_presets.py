"""Claim-mapping presets: the documents in config/presets/ agree with the code.

Operators copy those files, so they must not drift from ``PRESETS``: each file's
``[claims]`` table must be the preset, and its ``[sample_token]`` (a realistic token of
that provider) must map to its ``[expected]`` principal. The malformed-claim tables show
that a claim of the wrong shape is refused by name, never crashes, never maps to nothing.
"""

from __future__ import annotations

import copy
import functools
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ssoio.config.policy import ClaimMappingSettings
from ssoio.errors import ClaimsInvalid, ConfigError
from ssoio.oidc.claims import ClaimRules, check_access_token
from ssoio.policy import mapping as mapping_module
from ssoio.policy.mapping import ClaimMapping, delimited_claims, map_claims
from ssoio.policy.presets import PRESETS
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import parse
from ssoio.settings import validate_raw

PRESET_DIR = Path(__file__).resolve().parents[2] / "config" / "presets"
NAMES = sorted(PRESETS)
SINGLE = ("subject", "username", "email", "name", "session_id", "client_id")
MULTI = ("roles", "groups", "scopes")
FIELDS = (*SINGLE, *MULTI, "attributes")
MISSING = object()  # a patch value: remove the claim


@functools.cache
def _document(name: str) -> dict[str, Any]:
    with (PRESET_DIR / f"{name}.toml").open("rb") as file:
        return tomllib.load(file)


def document(name: str) -> dict[str, Any]:
    """A fresh copy, so a test may change it freely."""
    return copy.deepcopy(_document(name))


def mapping(name: str, **overrides: Any) -> ClaimMapping:
    settings = ClaimMappingSettings.model_validate({"preset": name, **overrides})
    return ClaimMapping.resolve(settings)


def principal_of(name: str, claims: Mapping[str, Any], **overrides: Any) -> Principal:
    return map_claims(claims, mapping(name, **overrides), "x")


def normalised_mapping(table: Mapping[str, Any]) -> dict[str, Any]:
    """TOML has arrays and no null: compare tuples as lists, absent keys as None."""
    result: dict[str, Any] = {}
    for key in FIELDS:
        value = table.get(key)
        result[key] = list(value) if isinstance(value, tuple | list) else value
    result["attributes"] = dict(table.get("attributes") or {})
    result["split"] = dict(table.get("split") or {})
    return result


def principal_fields(principal: Principal) -> dict[str, Any]:
    fields: dict[str, Any] = {key: getattr(principal, key) for key in SINGLE}
    fields.update({key: sorted(getattr(principal, key)) for key in MULTI})
    fields["attributes"] = {k: list(v) for k, v in principal.attributes.items()}
    return fields


def expected_fields(expected: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {key: expected.get(key) for key in SINGLE}
    fields.update({key: sorted(expected.get(key, [])) for key in MULTI})
    fields["attributes"] = {k: list(v) for k, v in expected.get("attributes", {}).items()}
    return fields


def patched(claims: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is MISSING:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


class TestDocuments:
    """Each config/presets/<name>.toml documents its preset exactly."""

    def test_every_preset_has_a_document(self) -> None:
        assert sorted(p.stem for p in PRESET_DIR.glob("*.toml")) == NAMES

    @pytest.mark.parametrize("name", NAMES)
    def test_claims_table_is_the_preset(self, name: str) -> None:
        claims = document(name)["claims"]
        assert claims.pop("preset") == name
        assert set(claims) <= {*FIELDS, "split"}, "an unknown key in [claims]"
        assert normalised_mapping(claims) == normalised_mapping(PRESETS[name])

    @pytest.mark.parametrize("name", NAMES)
    def test_claims_table_is_a_valid_issuers_claims_table(self, name: str) -> None:
        """Pasted into [issuers.claims], the table changes nothing."""
        settings = ClaimMappingSettings.model_validate(document(name)["claims"])
        assert ClaimMapping.resolve(settings) == mapping(name)

    @pytest.mark.parametrize("name", NAMES)
    def test_sample_token_maps_to_expected(self, name: str) -> None:
        doc = document(name)
        assert {"subject", *MULTI} <= set(doc["expected"]) <= set(FIELDS)
        principal = principal_of(name, doc["sample_token"])
        assert principal_fields(principal) == expected_fields(doc["expected"])

    @pytest.mark.parametrize("name", NAMES)
    def test_sample_token_passes_the_access_token_claim_checks(self, name: str) -> None:
        """The samples are real access tokens as ssoio sees them (no ID-token markers,
        issuer exactly as the provider writes it, a matching audience)."""
        sample = document(name)["sample_token"]
        aud = sample["aud"] if isinstance(sample["aud"], str) else sample["aud"][0]
        issuer = {"name": "x", "issuer": sample["iss"], "audiences": [aud]}
        if name != "generic":  # the generic sample is strict RFC 9068; the others are not
            issuer["token_types"] = ["at+jwt", "JWT"]
        settings = validate_raw({"issuers": [issuer]}, {})
        rules = ClaimRules.from_settings(settings.issuers[0])
        assert check_access_token(sample, rules, now=sample["iat"] + 60) == sample["exp"]


class TestDocumentedOverrides:
    """The overrides the documents tell operators to add do what they say."""

    def test_keycloak_tenant_mapper(self) -> None:
        principal = principal_of(
            "keycloak", document("keycloak")["sample_token"], attributes={"tenant": "tenant"}
        )
        assert principal.values("tenant") == ("acme",)

    def test_auth0_namespaced_claims_from_an_action(self) -> None:
        overrides = {
            "roles": ["https://example.com/roles"],
            "email": "https://example.com/email",
            "attributes": {"tenant": "https://example.com/tenant"},
        }
        principal = principal_of("auth0", document("auth0")["sample_token"], **overrides)
        assert principal.roles == {"admin", "staff"}
        assert principal.email == "alice@acme.example"
        assert principal.values("tenant") == ("acme",)

    def test_okta_immutable_subject(self) -> None:
        principal = principal_of("okta", document("okta")["sample_token"], subject="uid")
        assert (principal.subject, principal.username) == (
            "00u9a8b7c6d5e4f3g2h1",
            "alice@acme.example",
        )


WRONG_TYPES = [
    # (preset, claims patched into its sample token, the claim path ClaimsInvalid names)
    pytest.param("generic", {"roles": 5}, "roles", id="generic-roles-number"),
    pytest.param("entra", {"roles": 7}, "roles", id="entra-roles-number"),
    pytest.param(
        "keycloak",
        {"realm_access": {"roles": 3}},
        "realm_access.roles",
        id="keycloak-roles-number",
    ),
    pytest.param("generic", {"roles": 1.5}, "roles", id="generic-roles-float"),
    pytest.param("generic", {"roles": True}, "roles", id="generic-roles-bool"),
    pytest.param("generic", {"roles": {"admin": True}}, "roles", id="generic-roles-object"),
    pytest.param("entra", {"roles": {"admin": 1}}, "roles", id="entra-roles-object"),
    pytest.param(
        "keycloak",
        {"realm_access": {"roles": {"admin": {}}}},
        "realm_access.roles",
        id="keycloak-roles-object",
    ),
    pytest.param("generic", {"roles": ["admin", 3]}, "roles", id="generic-roles-non-string"),
    pytest.param("keycloak", {"groups": ["/eng", 1]}, "groups", id="keycloak-groups-non-string"),
    pytest.param("okta", {"groups": ["eng", None]}, "groups", id="okta-groups-null-item"),
    pytest.param("entra", {"groups": [{"id": "g1"}]}, "groups", id="entra-groups-objects"),
    pytest.param(
        "keycloak", {"realm_access": "admin"}, "realm_access.roles", id="keycloak-realm-string"
    ),
    pytest.param(
        "keycloak", {"realm_access": ["admin"]}, "realm_access.roles", id="keycloak-realm-list"
    ),
    pytest.param("keycloak", {"email": ["a@acme.example"]}, "email", id="keycloak-email-list"),
    pytest.param("entra", {"email": ["a@acme.example"]}, "email", id="entra-email-list"),
    pytest.param("okta", {"email": ["a@acme.example"]}, "email", id="okta-email-list"),
    pytest.param("generic", {"email": ["a@acme.example"]}, "email", id="generic-email-list"),
    pytest.param(
        "keycloak", {"preferred_username": 42}, "preferred_username", id="keycloak-username-int"
    ),
    pytest.param("okta", {"scp": {"chat": True}}, "scp", id="okta-scopes-object"),
    pytest.param("auth0", {"permissions": ["chat", 1]}, "permissions", id="auth0-permissions"),
    pytest.param("entra", {"tid": {"id": "t"}}, "tid", id="entra-tenant-object"),
    pytest.param("keycloak", {"sub": MISSING}, "sub", id="keycloak-subject-missing"),
    pytest.param("entra", {"oid": MISSING}, "oid", id="entra-subject-missing"),
    pytest.param("okta", {"sub": MISSING}, "sub", id="okta-subject-missing"),
    pytest.param("auth0", {"sub": MISSING}, "sub", id="auth0-subject-missing"),
    pytest.param("generic", {"sub": ""}, "sub", id="generic-subject-empty"),
    pytest.param("generic", {"sub": 12345}, "sub", id="generic-subject-number"),
]


@pytest.mark.parametrize(("name", "patch", "claim"), WRONG_TYPES)
def test_wrong_claim_type_is_refused_by_name(name: str, patch: dict[str, Any], claim: str) -> None:
    claims = patched(document(name)["sample_token"], patch)
    with pytest.raises(ClaimsInvalid) as caught:
        principal_of(name, claims)
    assert caught.value.claim == claim
    assert caught.value.code == "claims_invalid"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param(
            {"https://example.com/roles": ["literal"], "https://example": {"com/roles": ["x"]}},
            {"literal"},
            id="literal-wins",
        ),
        pytest.param(
            {"https://example": {"com/roles": ["nested"]}}, {"nested"}, id="dotted-fallback"
        ),
        pytest.param({"https://example.com/roles": "admin"}, {"admin"}, id="literal-bare-string"),
        pytest.param({}, set(), id="absent"),
    ],
)
def test_literal_dotted_claim_name_is_found_before_traversal(
    claims: dict[str, Any], expected: set[str]
) -> None:
    principal = principal_of(
        "auth0", {"sub": "auth0|1", **claims}, roles=["https://example.com/roles"]
    )
    assert principal.roles == expected


def test_literal_name_wins_over_keycloak_nesting() -> None:
    claims = {"sub": "u1", "realm_access.roles": ["literal"], "realm_access": {"roles": ["x"]}}
    assert principal_of("keycloak", claims).roles == {"literal"}


@pytest.mark.parametrize(
    ("name", "claims", "expected"),
    [
        pytest.param(
            "generic",
            {"scope": "openid  chat\tprofile"},
            {"openid", "chat", "profile"},
            id="string",
        ),
        pytest.param("generic", {"scp": ["openid", "chat"]}, {"openid", "chat"}, id="array"),
        pytest.param(
            "generic", {"scope": "openid", "scp": ["chat"]}, {"openid", "chat"}, id="both"
        ),
        pytest.param(
            "entra", {"oid": "o1", "scp": "chat presence"}, {"chat", "presence"}, id="entra-string"
        ),
        pytest.param("okta", {"scp": ["openid", "chat"]}, {"openid", "chat"}, id="okta-array"),
        pytest.param("okta", {"scp": "openid chat"}, {"openid", "chat"}, id="okta-string"),
        pytest.param(
            "auth0",
            {"scope": "openid chat", "permissions": ["presence:read"]},
            {"openid", "chat", "presence:read"},
            id="auth0-merged",
        ),
        pytest.param("keycloak", {"scope": ""}, set(), id="empty-string"),
    ],
)
def test_scopes_as_string_or_array(name: str, claims: dict[str, Any], expected: set[str]) -> None:
    assert principal_of(name, {"sub": "u1", **claims}).scopes == expected


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["/eng"], {"eng"}),
        (["/eng/backend", "/sales"], {"eng/backend", "sales"}),
        (["eng"], {"eng"}),
        ("/eng", {"eng"}),
    ],
)
def test_keycloak_group_paths_lose_the_outer_slash(groups: Any, expected: set[str]) -> None:
    principal = principal_of("keycloak", {"sub": "u1", "groups": groups})
    assert principal.groups == expected
    assert parse("group:eng")(principal) == ("eng" in expected)
    assert parse("group:/eng")(principal) == ("eng" in expected)


class TestSplit:
    """``split``: a multi-valued claim released as one delimited string (LemonLDAP::NG)."""

    @pytest.mark.parametrize(
        ("separator", "value", "expected"),
        [
            (";", "users; earthlings", {"users", "earthlings"}),
            (";", " users ;; earthlings ; ", {"users", "earthlings"}),
            (",", "users,earthlings", {"users", "earthlings"}),
            (" ", "users  earthlings\t", {"users", "earthlings"}),
            (";", ["users; earthlings", "staff"], {"users", "earthlings", "staff"}),
            (";", ";", set()),
        ],
    )
    def test_groups_split_trimmed_without_empties(
        self, separator: str, value: Any, expected: set[str]
    ) -> None:
        principal = principal_of("generic", {"sub": "u", "groups": value},
                                 split={"groups": separator})  # fmt: skip
        assert principal.groups == expected

    def test_roles_scopes_and_attributes_split(self) -> None:
        claims = {"sub": "u", "roles": "admin,staff", "scope": "openid;chat", "t": "a; b"}
        principal = principal_of(
            "generic", claims, attributes={"tenant": "t"},
            split={"roles": ",", "scopes": ";", "tenant": ";"},
        )  # fmt: skip
        assert principal.roles == {"admin", "staff"}
        assert principal.scopes == {"openid", "chat"}
        assert principal.values("tenant") == ("a", "b")

    def test_without_split_a_delimited_string_is_one_value(self) -> None:
        principal = principal_of("generic", {"sub": "u", "groups": "users; earthlings"})
        assert principal.groups == {"users; earthlings"}

    def test_lemonldap_preset_splits_groups_and_roles(self) -> None:
        principal = principal_of("lemonldap", {"sub": "dwho", "groups": "users; timelords",
                                               "roles": "staff"})  # fmt: skip
        assert principal.groups == {"users", "timelords"}
        assert principal.roles == {"staff"}

    @pytest.mark.parametrize(
        ("split", "message"),
        [
            ({"group": ";"}, "split names group: only roles, groups, scopes or an attribute"),
            ({"groups": "|"}, "Input should be ';', ',' or ' '"),
        ],
    )
    def test_bad_split_is_a_config_problem(self, split: dict[str, str], message: str) -> None:
        issuer = {"name": "x", "issuer": "https://idp.example", "audiences": ["a"]}
        with pytest.raises(ConfigError) as caught:
            validate_raw({"issuers": [{**issuer, "claims": {"split": split}}]}, {})
        assert message in str(caught.value)


class TestDelimitedWarning:
    """Without ``split``, a string holding ";" or "," is named (doctor) and logged once."""

    def test_delimited_claims_names_field_path_and_suggestion(self) -> None:
        claims = {"sub": "u", "groups": "users; earthlings", "roles": ["a,b"], "scope": "x,y"}
        found = delimited_claims(claims, mapping("generic"))
        assert [(d.field, d.path, d.separator, d.parts) for d in found] == [
            ("groups", "groups", ";", 2), ("scopes", "scope", ",", 2)]  # fmt: skip
        assert found[0].suggestion == 'split = { groups = ";" }'

    @pytest.mark.parametrize(
        "claims",
        [
            {"sub": "u", "groups": "Domain Users"},  # a space is not taken as a separator
            {"sub": "u", "groups": ["users; earthlings"]},  # an array is a list already
            {"sub": "u", "groups": "eng"},
        ],
    )
    def test_no_warning_for_plain_values(self, claims: dict[str, Any]) -> None:
        assert delimited_claims(claims, mapping("generic")) == []

    def test_split_silences_it(self) -> None:
        claims = {"sub": "u", "groups": "users; earthlings"}
        assert delimited_claims(claims, mapping("generic", split={"groups": ";"})) == []
        assert delimited_claims(claims, mapping("lemonldap")) == []

    def test_logged_once_per_process(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(mapping_module, "_warned", [])
        with caplog.at_level(logging.WARNING, logger="ssoio.policy.mapping"):
            for user in ("u1", "u2", "u3"):
                principal_of("generic", {"sub": user, "groups": "users; earthlings"})
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1, lines
        assert "claims.delimited_string field=groups path=groups separator=';' parts=2" in lines[0]
        assert 'add split = { groups = ";" } to [issuers.claims]' in lines[0]
        assert "earthlings" not in lines[0]  # claim values are not logged


def test_auto_maps_as_generic_until_the_metadata_chose_a_preset() -> None:
    settings = ClaimMappingSettings.model_validate({"preset": "auto"})
    assert ClaimMapping.resolve(settings) == mapping("generic")
    assert ClaimMapping.resolve(settings, "keycloak") == mapping("keycloak")
    named = ClaimMappingSettings.model_validate({"preset": "okta"})
    assert ClaimMapping.resolve(named, "keycloak") == mapping("okta")  # only auto follows it
