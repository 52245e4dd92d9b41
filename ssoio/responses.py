"""JSON error answers with stable codes, the one translation of errors to HTTP: for the web
routes and for the transport's own refusals (``ssoio.transport.guard``), which sits below
``web`` and so cannot reach it there."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ssoio.errors import (
    AccessDenied,
    AuthenticationError,
    ClusterUnavailable,
    IdpUnavailable,
    PayloadTooLarge,
    SsoioError,
)

__all__ = ["error_response", "ok", "refusal_body"]

NO_STORE = {"Cache-Control": "no-store"}


def error_response(error: SsoioError) -> JSONResponse:
    """``{"ok": false, "error": {code, message}}`` with the status the error implies."""
    headers = dict(NO_STORE)
    if isinstance(error, (ClusterUnavailable, IdpUnavailable)):
        status = 503  # the caller may retry; nothing is wrong with its credentials
    elif isinstance(error, AuthenticationError):
        status = 401
        # RFC 6750 §3: tell the client why its bearer token was refused
        headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{error.code}"'
        )
    elif isinstance(error, AccessDenied):
        status = 429 if error.code == "rate_limited" else 403
    elif isinstance(error, PayloadTooLarge):
        status = 413
    else:
        status = 400
    return JSONResponse(refusal_body(error), status, headers=headers)


def refusal_body(error: SsoioError) -> dict[str, Any]:
    """``{"ok": false, "error": {code, message}}``: the body of every refusal."""
    return {"ok": False, "error": error.as_dict()}


def ok(**body: Any) -> JSONResponse:
    return JSONResponse({"ok": True, **body}, headers=NO_STORE)
