"""``ssoio doctor`` against LemonLDAP::NG 2.16 (Debian's, run by the suite), with the
example configuration pointed at it as a new user would: the shipped ``keycloak`` preset is
flagged with the right one, and with ``lemonldap`` a real access token passes every check
but the tenant's (the portal's demo users have none)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli

from .browser import run_browser, step_errors, values
from .lemonldap import USERS
from .lemonldap_login import lemonldap_login_setup
from .test_doctor import EXAMPLE, line_of
from .test_lemonldap_provider import FETCH_JSON


async def test_doctor_recognises_lemonldap_and_passes_its_token(tmp_path: Path) -> None:
    user = USERS["dwho"]
    async with lemonldap_login_setup() as setup:
        provider = setup.provider
        steps = [
            {"op": "goto", "context": "p", "url": f"{setup.url}/auth/login?next=/auth/me"},
            *provider.login_steps("p", user.login),
            {"op": "wait_for_url", "context": "p", "pattern": f"{setup.url}/auth/me"},
            {"op": "eval", "context": "p", "expression": FETCH_JSON.format(url="/auth/token")},
        ]
        seen = await run_browser({"contexts": {"p": {}}, "steps": steps})
        assert step_errors(seen) == [], seen
        status, body = json.loads(values(seen, "eval")[0])
        assert status == 200, body
        token = body["access_token"]
        env = {"SSOIO_ISSUER": provider.issuer, "SSOIO_AUDIENCE": provider.client_id}
        shipped = tmp_path / "shipped.toml"
        shipped.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
        as_shipped = await run_cli("doctor", "--config", str(shipped), env=env)
        assert 'suggestion: preset = "lemonldap"' in line_of(as_shipped, "preset", "warn")
        fixed = tmp_path / "lemonldap.toml"
        text = shipped.read_text(encoding="utf-8").replace(
            'preset = "keycloak"', 'preset = "lemonldap"', 1
        )
        fixed.write_text(text, encoding="utf-8")
        result = await run_cli("doctor", "--config", str(fixed), "--token", token, env=env)
    # the one warning is true: the portal's demo users carry no tenant claim
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warn")]
    assert (result.status, len(warnings)) == (1, 1), result.stdout + result.stderr
    assert warnings[0].startswith("warn  claims tenant")
    assert token not in result.stdout + result.stderr
    assert "dwho" in line_of(result, "principal", "info")
    assert "front-channel only: register" in line_of(result, "logout", "info")
