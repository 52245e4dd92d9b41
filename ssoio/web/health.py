"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ssoio.oidc.providers import IdentityProviders

__all__ = ["health_routes"]


def health_routes(
    providers: IdentityProviders, draining: Callable[[], bool] = lambda: False
) -> list[Route]:
    """``/healthz``: the process answers. ``/readyz``: every issuer's keys are loaded (or
    still within their stale limit); 503 naming the issuers that are not, and 503
    ``draining`` during a graceful shutdown, so load balancers stop sending clients."""

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(_request: Request) -> JSONResponse:
        if draining():
            body = {"status": "draining", "failing_issuers": []}
            return JSONResponse(body, 503, headers={"Cache-Control": "no-store"})
        failing = [
            i.name for i in providers.settings.issuers if not providers.keys.status(i).loaded
        ]
        status = 503 if failing else 200
        body = {"status": "unavailable" if failing else "ready", "failing_issuers": failing}
        return JSONResponse(body, status, headers={"Cache-Control": "no-store"})

    return [Route("/healthz", healthz), Route("/readyz", readyz)]
