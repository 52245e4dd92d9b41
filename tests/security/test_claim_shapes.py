"""Claim shapes on a live node: a role released as one delimited string (LemonLDAP::NG) and
``preset = "auto"``, seen where a client meets them: joining the ``staff`` room."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ssoio.policy import mapping as mapping_module
from tests.security.harness import ISSUER, example_raw, running_node, settings_from
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey


def _settings(**claims: Any) -> Any:
    raw = example_raw()
    raw["issuers"][0]["claims"] = {"attributes": {"tenant": "tenant"}, **claims}
    return settings_from(raw)


async def _staff_join(
    settings: Any, key: SigningKey, idp: FakeIdp | None = None, **claims: Any
) -> tuple[Any, Any]:
    async with running_node(settings, key=key, idp=idp) as node:
        socket, _ = await node.client("bob", **claims)
        answer = await socket.call("room:join", {"room": "staff"})
        node.assert_clean(fetches=0)
        return answer, node.logs


async def test_delimited_roles_split_by_the_lemonldap_preset(rsa_key: SigningKey) -> None:
    answer, _ = await _staff_join(
        _settings(preset="lemonldap"), rsa_key, roles="users; staff", realm_access=...
    )
    assert answer["ok"] is True, answer


async def test_delimited_roles_without_split_are_one_role_and_logged(
    rsa_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mapping_module, "_warned", [])  # as in a fresh process
    answer, logs = await _staff_join(
        _settings(preset="generic"), rsa_key, roles="users; staff", realm_access=...
    )
    assert answer["ok"] is False, answer
    assert answer["error"]["code"] == "forbidden", answer
    warnings = [t for t in logs.texts() if "claims.delimited_string" in t]
    assert len(warnings) == 1, warnings  # bob and the sentinel: logged once
    assert 'split = { roles = ";" }' in warnings[0]


def _chosen(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The ``claims.preset.chosen`` audit records (written while the node starts, before the
    node's own log capture is installed)."""
    records = [getattr(r, "audit", None) for r in caplog.records if r.name == "ssoio.audit"]
    return [r for r in records if r and r["event"] == "claims.preset.chosen"]


async def test_preset_auto_follows_the_provider_metadata(
    rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    idp = FakeIdp(
        issuer=ISSUER,
        keys=[rsa_key],
        extra_metadata={"token_endpoint": f"{ISSUER}/protocol/openid-connect/token"},
    )
    with caplog.at_level(logging.INFO, logger="ssoio.audit"):
        answer, _ = await _staff_join(_settings(preset="auto"), rsa_key, idp)
    assert answer["ok"] is True, answer
    assert _chosen(caplog) == [
        {
            "event": "claims.preset.chosen",
            "issuer": "primary",
            "preset": "keycloak",
            "product": "Keycloak",
            "evidence": "token endpoint .../protocol/openid-connect/token",
        }
    ]


async def test_preset_auto_of_an_unknown_provider_is_generic(
    rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ssoio.audit"):
        answer, _ = await _staff_join(_settings(preset="auto"), rsa_key)
    assert answer["ok"] is False, answer  # generic reads roles, the token has realm_access
    assert [a["preset"] for a in _chosen(caplog)] == ["generic"]


async def test_reload_to_auto_uses_the_metadata_already_fetched(
    rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload that switches an issuer to ``auto`` picks from the cached discovery document
    at once (not generic until the next fetch, up to keys.discovery_ttl_s later)."""
    idp = FakeIdp(
        issuer=ISSUER,
        keys=[rsa_key],
        extra_metadata={"token_endpoint": f"{ISSUER}/protocol/openid-connect/token"},
    )
    async with running_node(_settings(preset="keycloak"), key=rsa_key, idp=idp) as node:
        with caplog.at_level(logging.INFO, logger="ssoio.audit"):
            await node.server.reload(_settings(preset="auto"))
        socket, _ = await node.client("bob")
        answer = await socket.call("room:join", {"room": "staff"})
        assert answer["ok"] is True, answer
        assert [a["preset"] for a in _chosen(caplog)] == ["keycloak"]
        node.assert_clean()
