"""The server API for corporate backends (standalone mode).

``POST /api/v1/emit {room, event, data}`` delivers an event to a room (field visibility
applies as for relayed events); ``POST /api/v1/disconnect {sub[, issuer]}`` disconnects a
user's sockets with ``auth:revoked {code: "kicked"}``, only those whose principal shares
each of ``api.disconnect.same_attributes`` with the caller (the rule of an event's
``kick``; others are skipped without saying so, so the answer never tells whether someone
outside the caller's tenant is online). Callers authenticate with a bearer access token
from a trusted issuer that meets ``api.requires`` and, when ``api.clients`` is set, was
issued to one of those clients (the example: a client-credentials token of
``ssoio-backend`` with scope ``ssoio:emit``; a user token that happens to carry the scope
is refused).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ssoio.errors import (
    ConfigError,
    Forbidden,
    InvalidPayload,
    PayloadTooLarge,
    SsoioError,
    TokenMalformed,
)
from ssoio.oidc.claims import authorized_party
from ssoio.policy.patterns import room_name_problem
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import Requirement, parse
from ssoio.realtime.gateway import Gateway
from ssoio.responses import error_response, ok
from ssoio.transport.server import RESERVED_EVENTS

__all__ = ["api_routes"]

_MAX_EVENT_NAME = 100
_RESERVED_PREFIXES = ("auth:", "room:", "presence:")


def api_routes(gateway: Gateway, reload: Callable[[], Awaitable[dict[str, Any]]]) -> list[Route]:
    """The ``/api/v1`` routes, bound to ``gateway``; ``reload`` reloads the config file."""
    settings = gateway.settings.api
    requirement = parse(settings.requires)
    admin = parse(settings.admin_requires)
    clients = frozenset(settings.clients)
    same_attributes = settings.disconnect.same_attributes
    max_body = 4 * gateway.settings.realtime.max_payload_bytes

    async def caller(request: Request, needed: Requirement = requirement) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenMalformed("send Authorization: Bearer <access token>")
        verified = await gateway.providers.verifier.verify(token.strip())
        if clients and authorized_party(verified.claims) not in clients:
            # a scope can be granted to users too; the client says who is calling
            raise Forbidden("this API accepts only tokens issued to its service clients")
        principal = gateway.policy.principal_from_claims(verified.claims, verified.issuer.name)
        if not needed(principal):
            raise Forbidden(f"this API requires {needed.describe()}")
        return principal

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > max_body:
            raise PayloadTooLarge()
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise InvalidPayload("the body must be JSON") from exc
        if not isinstance(document, dict):
            raise InvalidPayload("the body must be a JSON object")
        return document

    async def emit(request: Request) -> JSONResponse:
        try:
            principal = await caller(request)
            document = await body(request)
            room, event = _room(document), _event(document)
            await gateway.deliver(room, event, _data(document))
        except SsoioError as error:
            gateway.observe("api.refused", path="/api/v1/emit", code=error.code, **_detail(error))
            return error_response(error)
        gateway.observe(
            "api.emit", caller=principal.subject, issuer=principal.issuer, room=room, name=event
        )
        return ok()

    async def disconnect(request: Request) -> JSONResponse:
        try:
            principal = await caller(request)
            document = await body(request)
            sub, issuer = document.get("sub"), document.get("issuer")
            if not isinstance(sub, str) or not sub or not isinstance(issuer, str | None):
                raise InvalidPayload("the body is {sub[, issuer]}")
            count = await gateway.disconnect_user(
                sub, "kicked", issuer, actor=principal, same_attributes=same_attributes
            )
        except SsoioError as error:
            gateway.observe(
                "api.refused", path="/api/v1/disconnect", code=error.code, **_detail(error)
            )
            return error_response(error)
        gateway.observe(
            "api.disconnect",
            caller=principal.subject,
            issuer=principal.issuer,
            sub=sub,
            disconnected=count,
        )
        return ok(disconnected=count)

    async def reload_config(request: Request) -> JSONResponse:
        try:
            principal = await caller(request, admin)
            result = await reload()
        except ConfigError as refused:
            gateway.observe("api.refused", path="/api/v1/reload", code=refused.code)
            problems = [str(p) for p in refused.problems]
            return JSONResponse({"ok": False, "error": refused.as_dict(), "problems": problems},
                                400, headers={"Cache-Control": "no-store"})  # fmt: skip
        except SsoioError as error:
            gateway.observe("api.refused", path="/api/v1/reload", code=error.code)
            return error_response(error)
        gateway.observe("api.reload", caller=principal.subject, issuer=principal.issuer)
        return ok(**result)

    return [
        Route("/api/v1/emit", emit, methods=["POST"]),
        Route("/api/v1/disconnect", disconnect, methods=["POST"]),
        Route("/api/v1/reload", reload_config, methods=["POST"]),
    ]


def _room(document: dict[str, Any]) -> str:
    room = document.get("room")
    problem = room_name_problem(room)
    if problem is not None:
        raise InvalidPayload(f"room: {problem}")
    return str(room)


def _event(document: dict[str, Any]) -> str:
    event = document.get("event")
    if not isinstance(event, str) or not 0 < len(event) <= _MAX_EVENT_NAME:
        raise InvalidPayload(f"event: a name of 1 to {_MAX_EVENT_NAME} characters")
    if event in RESERVED_EVENTS or event.startswith(_RESERVED_PREFIXES):
        raise InvalidPayload("event: this name is reserved for ssoio itself")
    return event


def _data(document: dict[str, Any]) -> dict[str, Any]:
    data = document.get("data", {})
    if not isinstance(data, dict):
        raise InvalidPayload("data: must be a JSON object")
    return data


def _detail(error: SsoioError) -> dict[str, Any]:
    """Operator detail (seen vs expected) for the audit line; never in the answer."""
    return {"detail": error.detail} if error.detail else {}
