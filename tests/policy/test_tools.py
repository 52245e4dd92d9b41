"""Operator tools: ``ssoio policy test`` and ``ssoio explain``."""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ssoio.errors import ConfigError
from ssoio.policy.cases import run_cases
from ssoio.policy.engine import Policy
from tests.policy.conftest import EXAMPLE, claims_of
from tests.support.cli import run_cli
from tests.support.forge import SigningKey, forge

CASES = EXAMPLE.parent / "policy-tests.example.toml"


def test_example_cases_pass_and_cover_every_rule_and_user(policy: Policy) -> None:
    document = tomllib.loads(CASES.read_text())
    results = run_cases(policy, document)
    assert [r.detail for r in results if not r.passed] == []

    outcomes: dict[str, set[str]] = defaultdict(set)
    principals = {u: policy.principal_from_claims({"sub": u, **c}, "primary")
                  for u, c in document["users"].items()}  # fmt: skip
    for case in document["cases"]:
        if "expect" not in case:
            continue
        outcomes[case["user"]].add(case["expect"])
        rule = _rule_of(policy, principals[case["user"]], case)
        if rule:
            outcomes[rule].add(case["expect"])
    rules = [r.label for r in policy.rooms.rules] + [e.label for e in policy.events]
    for name in [*document["users"], *rules]:
        assert outcomes[name] == {"allow", "deny"}, name


def _rule_of(policy: Policy, principal: Any, case: dict[str, Any]) -> str | None:
    if "room" in case:
        decision = policy.room(principal, case["room"], case.get("action", "join"))
        if decision.rule is None:  # denied because a placeholder did not match: whose shape?
            shapes = policy.rooms.candidates(case["room"].split(":"))
            return shapes[0].label if shapes else None
        return decision.rule
    if "event" in case or "kick" in case:
        event = policy.events.find(case.get("event", "admin:kick"))
        return event.label if event else None
    return None


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"users": {}, "cases": []}, "cases: the file has no [[cases]]"),
        ({"users": {"a": {}}, "cases": [{"user": "b", "room": "x"}]}, "cases[0]: user 'b'"),
        ({"users": {"a": {}}, "cases": [{"user": "a"}]}, "cases[0]: a case asks exactly one"),
        ({"users": {"a": {}}, "cases": [{"user": "a", "room": "x", "expect": "yes"}]},
         'cases[0]: expect is "allow" or "deny"'),
        ({"users": {"a": {"realm_access": "admin"}}, "cases": [{"user": "a", "room": "x"}]},
         "users.a: claim realm_access.roles"),
    ],
)  # fmt: skip
def test_malformed_case_files(policy: Policy, document: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        run_cases(policy, document)
    assert str(caught.value.problems[0]).startswith(problem)


async def test_policy_test_command(tmp_path: Path) -> None:
    ok = await run_cli("policy", "test", str(CASES))
    assert ok.status == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("0 failed")

    failing = tmp_path / "cases.toml"
    failing.write_text(
        f'config = "{EXAMPLE.as_posix()}"\n[users.erin]\ntenant = "acme"\n'
        '[[cases]]\nuser = "erin"\nroom = "staff"\nexpect = "allow"\n'
    )
    result = await run_cli("policy", "test", str(failing))
    assert result.status == 1
    assert result.stdout.splitlines() == [
        "FAIL cases[0] erin join 'staff': expected allow, got deny: "
        "rooms[3] 'staff' allows join only to role:staff",
        "1 cases, 0 passed, 1 failed",
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("[[cases]\n")
    assert (await run_cli("policy", "test", str(broken))).status == 2


async def test_explain_claims_file(tmp_path: Path) -> None:
    claims = tmp_path / "erin.json"
    claims.write_text(json.dumps(claims_of("erin")))
    base = ("explain", "--config", str(EXAMPLE), "--claims", str(claims))
    allowed = await run_cli(*base, "--room", "tenant:acme:general", "--action", "publish")
    assert allowed.status == 0
    assert "auto-join  user:erin, tenant:acme" in allowed.stdout
    assert "room tenant:acme:general publish: ALLOW" in allowed.stdout

    denied = await run_cli(*base, "--event", "broadcast_announcement", "--json")
    assert denied.status == 1
    report = json.loads(denied.stdout)
    assert report["principal"]["groups"] == ["sales"]
    assert report["decisions"] == [
        {"question": "event broadcast_announcement", "allowed": False, "code": "forbidden",
         "rule": 'events."broadcast_announcement"',
         "reason": 'events."broadcast_announcement" allows only role:admin'}
    ]  # fmt: skip

    payload = await run_cli(
        *base, "--event", "chat:send", "--payload", '{"room": "staff", "text": "x"}'
    )
    assert payload.status == 1
    assert "DENY (forbidden): rooms[3] 'staff' allows publish only to role:staff" in payload.stdout


async def test_explain_token_says_when_the_signature_was_not_checked() -> None:
    token = forge({"alg": "RS256", "typ": "at+jwt"}, claims_of("alice"), SigningKey.rsa("k"))
    result = await run_cli("explain", "--config", str(EXAMPLE), "--token", token, "--room", "staff")
    assert result.status == 0
    assert result.stdout.startswith("token      signature NOT checked (pass --verify to check it)")
    assert token not in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--claims", "/nonexistent/claims.json"),
        ("--token", "not-a-token"),
        ("--claims", "-", "--issuer", "nope"),
    ],
)
async def test_explain_bad_input_exits_2(args: tuple[str, ...]) -> None:
    result = await run_cli("explain", "--config", str(EXAMPLE), *args)
    assert result.status == 2
    assert "Traceback" not in result.stderr


async def test_explain_answers_every_repeated_question(tmp_path: Path) -> None:
    """``--room`` and ``--event`` repeat: one decision each, exit 0 only if all allowed
    (issue #16: ``--room a --room b`` used to answer only b)."""
    claims = tmp_path / "bob.json"
    claims.write_text(json.dumps(claims_of("bob")))
    base = ("explain", "--config", str(EXAMPLE), "--claims", str(claims))
    questions = ("--room", "staff", "--room", "tenant:globex:general", "--event", "chat:send",
                 "--event", "broadcast_announcement")  # fmt: skip
    text = await run_cli(*base, *questions)
    assert text.status == 1, text.stderr
    assert text.stdout.splitlines()[-4:] == [
        "room staff join: ALLOW: rooms[3] 'staff' allows join to role:staff",
        "room tenant:globex:general join: DENY (forbidden): "
        "no room rule gives this principal 'tenant:globex:general'",
        'event chat:send: ALLOW: events."chat:send" allows scope:chat',
        "event broadcast_announcement: DENY (forbidden): "
        'events."broadcast_announcement" allows only role:admin',
    ]
    report = json.loads((await run_cli(*base, *questions, "--json")).stdout)
    assert [(d["question"], d["allowed"]) for d in report["decisions"]] == [
        ("room staff join", True), ("room tenant:globex:general join", False),
        ("event chat:send", True), ("event broadcast_announcement", False)]  # fmt: skip

    allowed = await run_cli(*base, "--room", "staff", "--room", "tenant:acme:general")
    assert allowed.status == 0, allowed.stdout
    assert allowed.stdout.count(": ALLOW: ") == 2

    paired = await run_cli(
        *base, "--event", "chat:send", "--payload", '{"room": "staff", "text": "x"}',
        "--event", "chat:send", "--payload", '{"room": "tenant:globex:general", "text": "x"}',
    )  # fmt: skip
    assert paired.status == 1
    assert [line.split(": ")[1] for line in paired.stdout.splitlines()[-2:]] == [
        "ALLOW",
        "DENY (forbidden)",
    ]

    unpaired = await run_cli(*base, "--event", "chat:send", "--event", "x", "--payload", "{}")
    assert unpaired.status == 2
    assert "--payload: 1 payloads for 2 events: give one per --event, in order" in unpaired.stderr


async def test_token_verify_and_explain_name_what_was_seen(tmp_path: Path) -> None:
    """A token whose iss has a trailing slash the configuration lacks: both commands name the
    two issuers and the difference; neither prints the token or its signature."""
    config = tmp_path / "ssoio.toml"
    config.write_text('[[issuers]]\nname = "lemon"\nissuer = "https://auth.acme.example"\n'
                      'audiences = ["ssoio-api"]\n')  # fmt: skip
    claims = {**claims_of("bob"), "iss": "https://auth.acme.example/"}
    token = forge({"alg": "RS256", "typ": "JWT", "kid": "k"}, claims, SigningKey.rsa("k"))
    verified = await run_cli("token", "verify", "--config", str(config), token)
    assert verified.status == 1
    line = json.loads(verified.stdout)
    assert line["code"] == "issuer_unknown"
    assert line["detail"] == {
        "seen": {"iss": "https://auth.acme.example/"},
        "expected": {"issuers": ["https://auth.acme.example"]},
        "hint": "trailing slash: the provider's issuer has trailing slash; issuers.issuer must "
        "be exactly 'https://auth.acme.example/'",
    }
    explained = await run_cli("explain", "--config", str(config), "--token", token, "--verify",
                              "--room", "x")  # fmt: skip
    assert explained.status == 2
    assert explained.stderr.splitlines()[:3] == [
        "issuer_unknown: the token's issuer is not trusted",
        '  seen     {"iss": "https://auth.acme.example/"}',
        '  expected {"issuers": ["https://auth.acme.example"]}',
    ]
    for output in (verified.stdout + verified.stderr, explained.stdout + explained.stderr):
        assert token not in output
        assert token.rsplit(".", 1)[1] not in output
