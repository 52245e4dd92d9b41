"""config/keycloak/realm-export.json: the reference scenario as a Keycloak realm.

Two kinds of checks. The export's structure: users, roles, groups, clients, client scopes
and mappers, each against DESIGN.md's reference scenario and the example configuration.
And what its tokens would say: a small model of how Keycloak turns the export into an
access token (default and optional client scopes, a client scope's role scope mapping,
then every mapper with "Add to access token" on) builds each user's claims, which then go
through ssoio's keycloak preset and the example policy.

Not covered here (no Keycloak runs on this machine): that Keycloak's import accepts the
file, and that its tokens match the model. docs/providers.md says so too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ssoio.config import Settings
from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import parse
from ssoio.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "config" / "keycloak" / "realm-export.json"
EXAMPLE = ROOT / "config" / "ssoio.example.toml"

Json = dict[str, Any]

# Realm roles every user of a fresh realm holds through default-roles-acme; Keycloak
# creates them on import, so the export does not list them.
DEFAULT_ROLES = ("default-roles-acme", "offline_access", "uma_authorization")


@dataclass(frozen=True)
class Person:
    """One row of DESIGN.md's reference scenario."""

    roles: frozenset[str]
    groups: frozenset[str]
    tenant: str
    chat: bool
    staff_room: bool


REFERENCE = {
    "alice": Person(frozenset({"admin", "staff"}), frozenset({"/eng"}), "acme", True, True),
    "bob": Person(frozenset({"staff"}), frozenset({"/sales"}), "acme", True, True),
    "carol": Person(frozenset(), frozenset(), "globex", True, False),
    "dave": Person(frozenset({"staff"}), frozenset({"/eng"}), "acme", False, True),
    "erin": Person(frozenset(), frozenset({"/sales"}), "acme", True, False),
}


@cache
def realm() -> Json:
    data: Json = json.loads(EXPORT.read_text(encoding="utf-8"))
    return data


@cache
def settings() -> Settings:
    return load_settings(EXAMPLE, env={})


def named(items: Iterable[Json], key: str = "name") -> dict[str, Json]:
    return {item[key]: item for item in items}


def users() -> dict[str, Json]:
    return named(realm()["users"], "username")


def clients() -> dict[str, Json]:
    return named(realm()["clients"], "clientId")


def client_scopes() -> dict[str, Json]:
    return named(realm()["clientScopes"])


def mappers(owner: Json) -> dict[str, Json]:
    return named(owner["protocolMappers"])


def public_url() -> str:
    return settings().server.public_url.rstrip("/")


# -- a model of Keycloak's access tokens ------------------------------------------------


def scope_roles(scope_name: str) -> set[str]:
    """Realm roles of a client scope's role scope mapping (its "Scope" tab)."""
    return {
        role
        for mapping in realm().get("scopeMappings", [])
        if mapping.get("clientScope") == scope_name
        for role in mapping["roles"]
    }


def permitted(scope: Json, roles: set[str]) -> bool:
    """Keycloak applies a client scope with role scope mappings only to holders of one."""
    required = scope_roles(scope["name"])
    return not required or bool(required & roles)


def applied_scopes(client: Json, requested: Iterable[str], roles: set[str]) -> list[Json]:
    names = [*client["defaultClientScopes"]]
    names += [n for n in requested if n in client["optionalClientScopes"]]
    return [s for s in (client_scopes()[n] for n in names) if permitted(s, roles)]


def set_claim(claims: Json, name: str, value: Any) -> None:
    *parents, last = name.split(".")  # Keycloak nests on dots: realm_access.roles
    target = claims
    for step in parents:
        target = target.setdefault(step, {})
    target[last] = value


def user_value(user: Json, attribute: str) -> Any:
    if attribute in ("username", "firstName", "lastName", "email", "emailVerified"):
        return user[attribute]
    values = user.get("attributes", {}).get(attribute, [])
    return values[0] if values else None


def apply_mapper(claims: Json, mapper: Json, user: Json, roles: set[str], sub: str) -> None:
    kind, config = mapper["protocolMapper"], mapper["config"]
    if config.get("access.token.claim") != "true":
        return
    claim = config.get("claim.name", "")
    if kind == "oidc-sub-mapper":
        claims["sub"] = sub
    elif kind == "oidc-usermodel-realm-role-mapper":
        set_claim(claims, claim, sorted(roles))
    elif kind == "oidc-group-membership-mapper":
        full = config.get("full.path") == "true"
        groups = [g if full else g.rsplit("/", 1)[-1] for g in user.get("groups", [])]
        set_claim(claims, claim, groups)
    elif kind in ("oidc-usermodel-attribute-mapper", "oidc-usermodel-property-mapper"):
        value = user_value(user, config["user.attribute"])
        if value is not None:
            set_claim(claims, claim, value)
    elif kind == "oidc-full-name-mapper":
        claims["name"] = f"{user['firstName']} {user['lastName']}"
    elif kind == "oidc-audience-mapper":
        claims["aud"] = [*claims["aud"], config["included.custom.audience"]]
    elif kind == "oidc-hardcoded-claim-mapper":
        set_claim(claims, claim, config["claim.value"])


def access_token(client_id: str, user: Json, roles: set[str], requested: tuple[str, ...]) -> Json:
    """The claims Keycloak would put in ``user``'s access token from ``client_id``."""
    client = clients()[client_id]
    scopes = applied_scopes(client, requested, roles)
    granted = [s["name"] for s in scopes if s["attributes"]["include.in.token.scope"] == "true"]
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"acme/{user['username']}"))
    claims: Json = {
        "iss": "https://sso.acme.example/realms/acme",
        "typ": "Bearer",
        "azp": client_id,
        "aud": [],
        "iat": 1767225600,
        "exp": 1767225600 + realm()["accessTokenLifespan"],
        "jti": str(uuid.uuid4()),
        "scope": " ".join(["openid"] * ("openid" in requested) + granted),
    }
    for mapper in [m for s in scopes for m in s["protocolMappers"]] + client["protocolMappers"]:
        apply_mapper(claims, mapper, user, roles, sub)
    return claims


def user_token(username: str) -> Json:
    """Alice's (or another person's) token after signing in through ssoio-web with chat."""
    user = users()[username]
    roles = {*DEFAULT_ROLES, *user["realmRoles"]}
    return access_token("ssoio-web", user, roles, ("openid", "profile", "email", "chat"))


def principal(username: str) -> Principal:
    return Policy(settings()).principal_from_claims(user_token(username), "primary")


# -- the export's structure -------------------------------------------------------------


class TestRealm:
    """Realm-wide settings, roles and groups."""

    def test_realm_and_token_lifespan(self) -> None:
        assert realm()["realm"] == "acme"
        assert realm()["enabled"] is True
        assert realm()["accessTokenLifespan"] == 300

    def test_realm_roles(self) -> None:
        names = {r["name"] for r in realm()["roles"]["realm"]}
        assert names == {"admin", "staff", "chat-user"}
        assert not any(r["composite"] for r in realm()["roles"]["realm"])

    def test_groups_are_top_level_with_full_paths(self) -> None:
        assert [(g["name"], g["path"]) for g in realm()["groups"]] == [
            ("eng", "/eng"),
            ("sales", "/sales"),
        ]

    def test_user_profile_declares_tenant_editable_by_admins_only(self) -> None:
        component = realm()["components"]["org.keycloak.userprofile.UserProfileProvider"][0]
        assert component["providerId"] == "declarative-user-profile"
        profile = json.loads(component["config"]["kc.user.profile.config"][0])
        attributes = named(profile["attributes"])
        assert {"username", "email", "firstName", "lastName", "tenant"} <= set(attributes)
        # A user who could edit their own tenant could move into another tenant's rooms.
        assert attributes["tenant"]["permissions"]["edit"] == ["admin"]


class TestUsers:
    """The five reference users, as DESIGN.md lists them."""

    def test_exactly_the_reference_users(self) -> None:
        assert set(users()) == set(REFERENCE)

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_roles_groups_and_tenant(self, username: str) -> None:
        user, person = users()[username], REFERENCE[username]
        assert set(user["realmRoles"]) - {"chat-user"} == person.roles
        assert set(user["groups"]) == person.groups
        assert user["attributes"] == {"tenant": [person.tenant]}

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_chat_user_role_exactly_for_the_entitled(self, username: str) -> None:
        assert ("chat-user" in users()[username]["realmRoles"]) is REFERENCE[username].chat

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_profile_and_demo_password(self, username: str) -> None:
        user = users()[username]
        assert user["email"] == f"{username}@{REFERENCE[username].tenant}.example"
        assert user["firstName"] == username.capitalize()
        assert user["lastName"]
        assert user["enabled"] is True
        assert user["emailVerified"] is True
        assert user["requiredActions"] == []
        assert user["credentials"] == [
            {"type": "password", "value": f"{username}-pw", "temporary": False}
        ]


class TestWebClient:
    """ssoio-web: the confidential client browsers sign in through."""

    def client(self) -> Json:
        return clients()["ssoio-web"]

    def test_confidential_standard_flow_only(self) -> None:
        client = self.client()
        assert client["publicClient"] is False
        assert client["clientAuthenticatorType"] == "client-secret"
        assert client["secret"] == "change-me"
        assert client["standardFlowEnabled"] is True
        assert client["implicitFlowEnabled"] is False
        assert client["directAccessGrantsEnabled"] is False
        assert client["serviceAccountsEnabled"] is False

    def test_pkce_s256_required(self) -> None:
        assert self.client()["attributes"]["pkce.code.challenge.method"] == "S256"

    def test_redirect_and_post_logout_uris(self) -> None:
        client = self.client()
        assert f"{public_url()}/auth/callback" in client["redirectUris"]
        assert all(u.endswith("/auth/callback") for u in client["redirectUris"])
        assert not any("*" in u for u in client["redirectUris"])
        post_logout = client["attributes"]["post.logout.redirect.uris"].split("##")
        assert f"{public_url()}{settings().login.post_logout_path}" in post_logout
        assert client["webOrigins"] == ["+"]

    def test_back_channel_logout_with_session(self) -> None:
        attributes = self.client()["attributes"]
        assert attributes["backchannel.logout.url"] == f"{public_url()}/auth/backchannel-logout"
        assert attributes["backchannel.logout.session.required"] == "true"
        assert self.client()["frontchannelLogout"] is False

    def test_scopes(self) -> None:
        client = self.client()
        assert {"basic", "profile", "email", "roles"} <= set(client["defaultClientScopes"])
        assert client["optionalClientScopes"] == ["chat"]

    def test_groups_mapper_full_path_in_access_and_id_token(self) -> None:
        mapper = mappers(self.client())["groups"]
        assert mapper["protocolMapper"] == "oidc-group-membership-mapper"
        config = mapper["config"]
        assert config["claim.name"] == "groups"
        assert config["full.path"] == "true"
        assert config["access.token.claim"] == config["id.token.claim"] == "true"

    def test_tenant_mapper_in_access_token(self) -> None:
        mapper = mappers(self.client())["tenant"]
        assert mapper["protocolMapper"] == "oidc-usermodel-attribute-mapper"
        config = mapper["config"]
        assert (config["user.attribute"], config["claim.name"]) == ("tenant", "tenant")
        assert config["jsonType.label"] == "String"
        assert config["access.token.claim"] == "true"
        assert settings().issuers[0].claims.attributes == {"tenant": "tenant"}

    def test_audience_is_the_example_audience(self) -> None:
        assert_audience_mapper(self.client())


class TestBackendClient:
    """ssoio-backend: client credentials for the server API."""

    def client(self) -> Json:
        return clients()["ssoio-backend"]

    def test_service_account_only(self) -> None:
        client = self.client()
        assert client["publicClient"] is False
        assert client["serviceAccountsEnabled"] is True
        assert client["standardFlowEnabled"] is False
        assert client["directAccessGrantsEnabled"] is False

    def test_emit_scope_is_a_default_scope(self) -> None:
        assert "ssoio:emit" in self.client()["defaultClientScopes"]
        scope = client_scopes()["ssoio:emit"]
        assert scope["attributes"]["include.in.token.scope"] == "true"
        assert scope_roles("ssoio:emit") == set()
        assert "ssoio:emit" not in clients()["ssoio-web"]["optionalClientScopes"]

    def test_audience_is_the_example_audience(self) -> None:
        assert_audience_mapper(self.client())


def assert_audience_mapper(client: Json) -> None:
    found = [m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
    assert len(found) == 1
    config = found[0]["config"]
    assert config["included.custom.audience"] in settings().issuers[0].audiences
    assert config["access.token.claim"] == "true"


class TestClientScopes:
    """Declaring any client scope stops Keycloak from creating its built-in ones."""

    def test_every_referenced_scope_is_declared(self) -> None:
        referenced = {
            *realm()["defaultDefaultClientScopes"],
            *realm()["defaultOptionalClientScopes"],
        }
        for client in clients().values():
            referenced |= {*client["defaultClientScopes"], *client["optionalClientScopes"]}
        referenced |= {m["clientScope"] for m in realm()["scopeMappings"]}
        assert referenced <= set(client_scopes())

    def test_basic_writes_sub(self) -> None:
        kinds = {m["protocolMapper"] for m in client_scopes()["basic"]["protocolMappers"]}
        assert "oidc-sub-mapper" in kinds  # Keycloak 25+ writes sub only through this mapper

    def test_roles_writes_realm_access_roles(self) -> None:
        mapper = mappers(client_scopes()["roles"])["realm roles"]
        assert mapper["config"]["claim.name"] == "realm_access.roles"
        assert mapper["config"]["access.token.claim"] == "true"

    def test_chat_is_limited_to_chat_users(self) -> None:
        scope = client_scopes()["chat"]
        assert scope["attributes"]["include.in.token.scope"] == "true"
        assert scope_roles("chat") == {"chat-user"}


# Fields of Keycloak's representations (org.keycloak.representations.idm) the export may use.
KNOWN = {
    "realm": {
        "realm", "displayName", "enabled", "sslRequired", "accessTokenLifespan",
        "registrationAllowed", "loginWithEmailAllowed", "duplicateEmailsAllowed",
        "resetPasswordAllowed", "editUsernameAllowed", "bruteForceProtected", "roles", "groups",
        "users", "clientScopes", "scopeMappings", "defaultDefaultClientScopes",
        "defaultOptionalClientScopes", "clients", "components",
    },
    "role": {"name", "description", "composite", "clientRole"},
    "group": {"name", "path", "subGroups"},
    "user": {
        "username", "enabled", "emailVerified", "firstName", "lastName", "email", "attributes",
        "credentials", "requiredActions", "realmRoles", "groups",
    },
    "credential": {"type", "value", "temporary"},
    "client": {
        "clientId", "name", "description", "enabled", "protocol", "publicClient",
        "clientAuthenticatorType", "secret", "standardFlowEnabled", "implicitFlowEnabled",
        "directAccessGrantsEnabled", "serviceAccountsEnabled", "consentRequired",
        "fullScopeAllowed", "frontchannelLogout", "redirectUris", "webOrigins", "attributes",
        "defaultClientScopes", "optionalClientScopes", "protocolMappers",
    },
    "clientScope": {"name", "description", "protocol", "attributes", "protocolMappers"},
    "mapper": {"name", "protocol", "protocolMapper", "consentRequired", "config"},
    "scopeMapping": {"clientScope", "roles"},
    "component": {"providerId", "subComponents", "config"},
}  # fmt: skip


class TestOnlyKnownFields:
    """A misspelt field would be ignored or refused by Keycloak's import."""

    def test_fields(self) -> None:
        data = realm()
        found: list[tuple[str, Mapping[str, Any]]] = [("realm", data)]
        found += [("role", r) for r in data["roles"]["realm"]]
        found += [("group", g) for g in data["groups"]]
        found += [("user", u) for u in data["users"]]
        found += [("credential", c) for u in data["users"] for c in u["credentials"]]
        found += [("client", c) for c in data["clients"]]
        found += [("clientScope", s) for s in data["clientScopes"]]
        owners = [*data["clients"], *data["clientScopes"]]
        found += [("mapper", m) for owner in owners for m in owner["protocolMappers"]]
        found += [("scopeMapping", m) for m in data["scopeMappings"]]
        found += [("component", c) for cs in data["components"].values() for c in cs]
        unknown = [(kind, key) for kind, item in found for key in item if key not in KNOWN[kind]]
        assert unknown == []

    def test_attribute_and_config_values_are_strings(self) -> None:
        owners = [*realm()["clients"], *realm()["clientScopes"]]
        maps = [o["attributes"] for o in owners]
        maps += [m["config"] for o in owners for m in o["protocolMappers"]]
        assert all(isinstance(v, str) for values in maps for v in values.values())


# -- the tokens through ssoio's keycloak preset and the example policy ------------------


class TestTokensThroughPolicy:
    """Each user's modelled token, mapped by the keycloak preset, meets the example policy."""

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_claims_are_keycloak_shaped(self, username: str) -> None:
        claims, person = user_token(username), REFERENCE[username]
        assert claims["aud"] == ["ssoio-api"]
        assert set(claims["realm_access"]["roles"]) - {"chat-user", *DEFAULT_ROLES} == person.roles
        assert set(claims["groups"]) == person.groups
        assert claims["tenant"] == person.tenant
        assert claims["preferred_username"] == username
        scope = "openid profile email" + " chat" * person.chat
        assert claims["scope"] == scope

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_principal(self, username: str) -> None:
        found, person = principal(username), REFERENCE[username]
        assert found.username == username
        assert found.email == f"{username}@{person.tenant}.example"
        assert found.values("tenant") == (person.tenant,)
        assert found.groups == {g.removeprefix("/") for g in person.groups}
        assert person.roles <= found.roles
        assert ("chat" in found.scopes) is person.chat

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_staff_room(self, username: str) -> None:
        decision = Policy(settings()).room(principal(username), "staff", "join")
        assert decision.allowed is REFERENCE[username].staff_room

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_chat_send(self, username: str) -> None:
        decision = Policy(settings()).may_send(principal(username), "chat:send")
        assert decision.allowed is REFERENCE[username].chat

    @pytest.mark.parametrize("username", sorted(REFERENCE))
    def test_own_tenant_rooms_only(self, username: str) -> None:
        policy, found = Policy(settings()), principal(username)
        tenant = REFERENCE[username].tenant
        other = "globex" if tenant == "acme" else "acme"
        assert policy.room(found, f"tenant:{tenant}:general", "join").allowed
        assert not policy.room(found, f"tenant:{other}:general", "join").allowed
        assert f"tenant:{tenant}" in policy.auto_join(found)

    def test_backend_token_may_call_the_server_api(self) -> None:
        account = {"username": "service-account-ssoio-backend", "groups": []}
        claims = access_token("ssoio-backend", account, set(DEFAULT_ROLES), ())
        assert claims["scope"] == "ssoio:emit"
        assert claims["aud"] == ["ssoio-api"]
        found = Policy(settings()).principal_from_claims(claims, "primary")
        assert parse(settings().api.requires)(found)
        # api.clients names it, and its tenant scopes its API disconnects
        assert found.client_id in settings().api.clients
        assert claims["tenant"] == "acme"
        assert settings().api.disconnect.same_attributes == ("tenant",)

    def test_user_tokens_may_not_call_the_server_api(self) -> None:
        requirement = parse(settings().api.requires)
        assert not any(requirement(principal(u)) for u in REFERENCE)
