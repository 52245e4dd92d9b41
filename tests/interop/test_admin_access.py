"""``/admin/access`` (explain as a page) in headless Chromium and over HTTP, against the
node provider: admins see every rule's decision for pasted claims or tokens, others are
refused, nothing pasted runs or leaks, the form is CSRF-safe."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .browser import run_browser, step_errors, values
from .web_login import Browser, LoginSetup, login_setup

pytestmark = pytest.mark.interop

BOB = {"sub": "bob", "preferred_username": "bob", "realm_access": {"roles": ["staff"]},
       "groups": ["/sales"], "tenant": "acme", "scope": "openid profile email chat"}  # fmt: skip
SCRIPT = "<script>window.pwned = 1</script>"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def setup() -> AsyncIterator[LoginSetup]:
    async with login_setup() as running:
        yield running


def sign_in(url: str, context: str, user: str) -> list[dict[str, object]]:
    return [
        {"op": "goto", "context": context, "url": f"{url}/admin/access"},
        {"op": "fill", "context": context, "selector": "input[name=username]", "value": user},
        {"op": "fill", "context": context, "selector": "input[name=password]",
         "value": f"{user}-pw"},
        {"op": "click", "context": context, "selector": "button[type=submit]"},
        {"op": "wait_for_url", "context": context, "pattern": f"{url}/admin/access"},
    ]  # fmt: skip


def ask(context: str, field: str, value: str) -> list[dict[str, object]]:
    return [
        {"op": "fill", "context": context, "selector": f"textarea[name={field}]", "value": value},
        {"op": "click", "context": context, "selector": "#ask"},
        {"op": "wait_for_selector", "context": context, "selector": "#result h2"},
        {"op": "text", "context": context, "selector": "#result"},
    ]


def forged(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["admin"]}
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def test_admins_see_decisions_others_are_refused_nothing_pasted_runs(
    setup: LoginSetup, caplog: pytest.LogCaptureFixture
) -> None:
    bob_token = (await setup.idp.user_tokens("bob"))["access_token"]
    steps = [
        *sign_in(setup.url, "alice", "alice"),
        {"op": "text", "context": "alice", "selector": "table.principal"},
        *ask("alice", "claims", json.dumps(BOB)),
        *ask("alice", "claims", json.dumps({**BOB, "preferred_username": SCRIPT})),
        {"op": "eval", "context": "alice", "expression": "String(window.pwned)"},
        *ask("alice", "token", forged(bob_token)),
        *ask("alice", "token", bob_token),
        *sign_in(setup.url, "erin", "erin"),
        {"op": "text", "context": "erin", "selector": "h1"},
    ]
    with caplog.at_level(logging.INFO, logger="ssoio.audit"):
        seen = await asyncio.wait_for(
            run_browser({"contexts": {"alice": {}, "erin": {}}, "steps": steps}), 120
        )
    assert step_errors(seen) == [], seen
    me, claims_page, script_page, forged_page, token_page, erin = values(seen, "text")
    assert "alice" in me
    assert "admin" in me
    # bob's claims: the staff room is his, the admin-only event is not
    assert "join staff\tallowed" in claims_page
    assert "send broadcast_announcement\tdenied" in claims_page
    assert "join tenant:acme:example\tallowed" in claims_page
    assert SCRIPT in script_page  # shown as text...
    assert values(seen, "eval") == ["undefined"]  # ...never run
    assert "signature_invalid" in forged_page
    assert "send chat:send\tallowed" in token_page
    assert erin == "Forbidden"
    # nothing pasted reaches the log
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "admin.access.explain" in logged
    assert bob_token not in logged
    assert bob_token.split(".")[2] not in logged
    assert "pwned" not in logged


async def test_the_form_is_csrf_safe(setup: LoginSetup) -> None:
    browser = Browser(setup.url)
    try:
        await browser.sign_in("alice")
        page = await browser.http.get(f"{setup.url}/admin/access")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        form = {"claims": json.dumps(BOB)}
        no_token = await browser.http.post(f"{setup.url}/admin/access", data=form,
                                           headers={"Origin": setup.url})  # fmt: skip
        csrf = page.text.split("name=csrf value='")[1].split("'")[0]
        cross = await browser.http.post(f"{setup.url}/admin/access", data={**form, "csrf": csrf},
                                        headers={"Origin": "https://evil.example"})  # fmt: skip
        good = await browser.http.post(f"{setup.url}/admin/access", data={**form, "csrf": csrf},
                                       headers={"Origin": setup.url})  # fmt: skip
        assert (no_token.status_code, cross.status_code, good.status_code) == (403, 403, 200)
        assert "id=decisions" in good.text
        anonymous = Browser(setup.url)
        answer = await anonymous.http.get(f"{setup.url}/admin/access")
        await anonymous.close()
        assert (answer.status_code, answer.headers["location"]) == (
            303,
            "/auth/login?next=/admin/access",
        )
    finally:
        await browser.close()
