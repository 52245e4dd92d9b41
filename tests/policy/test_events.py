"""Event rules: lookup, payload shape, relay stamping, configuration problems."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.errors import ConfigError, InvalidPayload
from ssoio.policy.engine import Policy
from ssoio.policy.events import delivered_payload, validate_payload
from ssoio.policy.principal import Principal
from ssoio.settings import validate_raw

ISSUER = {"name": "kc", "issuer": "https://idp.test", "audiences": ["api"]}
SENDER = Principal(issuer="kc", subject="u-1", username="alice")


def policy_of(events: dict[str, Any], **extra: Any) -> Policy:
    return Policy(validate_raw({"issuers": [ISSUER], "events": events, **extra}, {}))


def test_exact_names_win_over_wildcards_then_config_order() -> None:
    policy = policy_of(
        {
            "orders:*": {"requires": "role:sales"},
            "orders:cancel": {"requires": "role:manager"},
            "*:cancel": {"requires": "nobody"},
        }
    )
    names = {q: getattr(policy.events.find(q), "name", None)
             for q in ("orders:cancel", "orders:update", "tickets:cancel")}  # fmt: skip
    assert names == {"orders:cancel": "orders:cancel", "orders:update": "orders:*",
                     "tickets:cancel": "*:cancel"}  # fmt: skip
    assert policy.events.find("orders") is None
    assert policy.events.find("orders:a:b") is None
    assert policy.events.find("orders: x") is None


def test_unknown_events_may_be_allowed_explicitly() -> None:
    assert policy_of({}).may_send(SENDER, "x").code == "unknown_event"
    assert policy_of({}, policy={"allow_unknown_events": True}).may_send(SENDER, "x").allowed


FIELDS = {
    "text": {"type": "string", "max_length": 5},
    "count": "integer",
    "ratio": {"type": "number", "required": False},
    "flag": {"type": "boolean", "required": False},
    "room": {"type": "room", "required": False},
}
GOOD = {"text": "hi", "count": 3}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (GOOD, None),
        ({**GOOD, "ratio": 0.5, "flag": False, "room": "a:b"}, None),
        ({**GOOD, "ratio": None}, None),
        (None, "JSON object"),
        ([], "JSON object"),
        ("text", "JSON object"),
        ({"text": "hi"}, "'count' is required"),
        ({**GOOD, "extra": 1}, "unexpected field 'extra'"),
        ({**GOOD, "text": "toolong"}, "longer than 5"),
        ({**GOOD, "text": 5}, "must be a string"),
        ({**GOOD, "count": "3"}, "must be an integer"),
        ({**GOOD, "count": 3.0}, "must be an integer"),
        ({**GOOD, "count": True}, "must be an integer"),
        ({**GOOD, "ratio": "0.5"}, "must be an number"),
        ({**GOOD, "ratio": float("nan")}, "finite"),
        ({**GOOD, "flag": 1}, "true or false"),
        ({**GOOD, "room": "a:*"}, "'room'"),
        ({**GOOD, "room": ""}, "'room'"),
    ],
)
def test_payload_validation(payload: Any, error: str | None) -> None:
    event = policy_of({"e": {"requires": "authenticated", "fields": FIELDS}}).events.find("e")
    assert event is not None
    if error is None:
        clean = validate_payload(event, payload)
        assert clean == {k: v for k, v in payload.items() if v is not None}
        assert clean is not payload
    else:
        with pytest.raises(InvalidPayload, match=error):
            validate_payload(event, payload)


def test_delivered_payload_is_stamped_by_the_server_without_mutation() -> None:
    policy = policy_of(
        {"chat:send": {"requires": "authenticated", "fields": {"room": "room", "text": "string"},
                       "room_field": "room", "deliver_as": "chat:message"}}
    )  # fmt: skip
    event = policy.events.find("chat:send")
    assert event is not None
    payload = {"room": "r", "text": "hi"}
    delivered = delivered_payload(event, SENDER, payload)
    assert delivered == {"room": "r", "text": "hi", "from": {"sub": "u-1", "username": "alice"}}
    assert payload == {"room": "r", "text": "hi"}


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"deliver_as": "x"}, "events.e.deliver_as: needs exactly one of room_field"),
        ({"deliver_as": "x", "room_field": "text", "fields": {"text": "string"}},
         "events.e.room_field: must name a declared field of type room"),
        ({"room_action": "join"}, "events.e.room_action: needs room_field or target_room"),
        ({"target_room": "t:*"}, "events.e.target_room: cannot contain '*'"),
        ({"target_room": "t:{nope}"}, "events.e.target_room: placeholder {nope} is not"),
        ({"fields": {"from": "string"}},
         "events.e.sender_field: is set by the server; it cannot be a declared field"),
        ({"visible": {"secret": "role:x"}}, "events.e.visible.secret: is not a delivered field"),
        ({"kick": {}}, "events.e.fields: a kick event declares a string field sub"),
        ({"requires": "root"}, "events.e.requires: unknown requirement 'root'"),
    ],
)  # fmt: skip
def test_event_config_problems(rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_of({"e": {"requires": "authenticated", **rule}})
    assert any(str(p).startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("name", ["room:join", "auth:refresh", "auth:anything", "connect", "a::b"])
def test_reserved_event_names(name: str) -> None:
    with pytest.raises(ConfigError, match=r"reserved|segments"):
        policy_of({name: {"requires": "authenticated"}})
