"""Configuration sections of the policy: claim mapping, rooms, events, presence.

Requirements and room patterns are written in the policy's languages: config does not
parse them; the loader's caller passes the policy's parsers as ``checks.Checks``
(``checked("requirement")``, ``checked("room_pattern")``), so their mistakes are still
reported at load time with key paths, like every other problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from ssoio.config.base import Section
from ssoio.config.checks import checked

__all__ = [
    "BUILTIN_EVENTS",
    "ClaimMappingSettings",
    "EventRule",
    "FieldSpec",
    "KickSettings",
    "PolicySettings",
    "PresenceSettings",
    "RoomRule",
]

# Events that ssoio itself handles (DESIGN.md wire contract) and names Socket.IO reserves.
BUILTIN_EVENTS = frozenset({"room:join", "room:leave", "presence:list", "auth:refresh"})
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "newListener"})


def _event_name(value: str) -> str:
    if value in BUILTIN_EVENTS or value in RESERVED_EVENTS or value.startswith("auth:"):
        raise ValueError(f"{value!r} is a built-in or reserved event name")
    return value


RequirementSpec = Annotated[str | dict[str, Any], AfterValidator(checked("requirement"))]
RoomPatternText = Annotated[str, AfterValidator(checked("room_pattern"))]
# event names share the room-name shape, wildcards included
EventName = Annotated[str, AfterValidator(_event_name), AfterValidator(checked("room_pattern"))]
ClaimPath = Annotated[str, Field(min_length=1, max_length=256)]
Identifier = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,31}$")]
FieldType = Literal["string", "integer", "number", "boolean", "room"]
PresetName = Literal["keycloak", "entra", "okta", "auth0", "lemonldap", "generic", "auto"]
# What a multi-valued claim released as one delimited string ("users; earthlings") is split
# on; parts are trimmed and empty ones dropped.
Separator = Literal[";", ",", " "]
_SPLITTABLE = frozenset({"roles", "groups", "scopes"})


class ClaimMappingSettings(Section):
    """Where an issuer's claims are; unset keys come from the preset.

    A claim path is tried first as one literal claim name (Auth0's namespaced
    ``https://example.com/roles``), then as dotted steps into nested objects
    (``realm_access.roles``).
    """

    # "auto": chosen from the provider's discovery metadata (ssoio.oidc.families) when it
    # is first fetched; generic until then.
    preset: PresetName = "generic"
    subject: ClaimPath | None = None
    username: ClaimPath | None = None
    email: ClaimPath | None = None
    name: ClaimPath | None = None
    session_id: ClaimPath | None = None
    client_id: ClaimPath | None = None
    roles: tuple[ClaimPath, ...] | None = None
    groups: tuple[ClaimPath, ...] | None = None
    scopes: tuple[ClaimPath, ...] | None = None
    attributes: dict[Identifier, ClaimPath] = Field(default_factory=dict)
    # roles, groups, scopes or an attribute name -> the separator its string value uses
    split: dict[Identifier, Separator] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _split_names_a_multi_valued_claim(self) -> ClaimMappingSettings:
        unknown = sorted(set(self.split) - _SPLITTABLE - set(self.attributes))
        if unknown:
            raise ValueError(
                f"split names {', '.join(unknown)}: only roles, groups, scopes or an "
                "attribute of this table can be split"
            )
        return self


class RoomRule(Section):
    """Who may join, publish to and list the presence of rooms matching ``pattern``."""

    pattern: RoomPatternText
    join: RequirementSpec
    publish: RequirementSpec = "nobody"
    presence: RequirementSpec | None = None  # default: the join requirement
    auto_join: bool = False


class FieldSpec(Section):
    """One declared payload field."""

    type: FieldType
    required: bool = True
    max_length: int = Field(1000, ge=1, le=1_000_000)


class KickSettings(Section):
    """A kick event: disconnects the sockets of the ``sub`` named in the payload."""

    same_attributes: tuple[Identifier, ...] = ()


class EventRule(Section):
    """A client event: who may send it, its payload, and what the server does with it."""

    requires: RequirementSpec
    fields: dict[Identifier, FieldType | FieldSpec] = Field(default_factory=dict)
    room_field: Identifier | None = None
    room_action: Literal["join", "publish", "presence"] | None = None
    target_room: RoomPatternText | None = None
    deliver_as: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    sender_field: Identifier = "from"
    visible: dict[Identifier, RequirementSpec] = Field(default_factory=dict)
    kick: KickSettings | None = None

    def field_spec(self, name: str) -> FieldSpec | None:
        spec = self.fields.get(name)
        return FieldSpec(type=spec) if isinstance(spec, str) else spec


class PresenceSettings(Section):
    """What ``presence:list`` shows of each member, and to whom."""

    fields: tuple[Literal["sub", "username", "email", "name"], ...] = ("sub", "username")
    visible: dict[Identifier, RequirementSpec] = Field(default_factory=dict)


def _default_namespaces() -> dict[str, str | dict[str, Any]]:
    return {"/": "authenticated"}


class PolicySettings(Section):
    """Policy-wide switches."""

    allow_unknown_events: bool = False
    max_auto_join_rooms: int = Field(32, ge=0, le=1024)
    namespaces: dict[str, RequirementSpec] = Field(default_factory=_default_namespaces)
