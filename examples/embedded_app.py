"""A corporate Starlette app with ssoio embedded: its own routes, plus authenticated
real-time events whose handlers receive the caller's ``Principal``.

Run it (against the provider your config names)::

    SSOIO_ISSUER=https://kc.example.com/realms/acme .venv/bin/python examples/embedded_app.py

Then connect a Socket.IO client with an access token and call ``orders:update``.
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from ssoio import Principal, Settings, SsoServer, load_settings
from ssoio.serving import uvicorn_config

ORDERS: dict[str, str] = {}


def create_app(settings: Settings) -> tuple[Starlette, SsoServer]:
    """The host application: ``/orders`` is its own route; everything else is ssoio."""
    sso = SsoServer(settings)

    @sso.on("orders:update", requires="role:staff",
            fields={"order": "string", "status": {"type": "string", "max_length": 20}})  # fmt: skip
    async def update_order(principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
        ORDERS[payload["order"]] = payload["status"]
        tenant = principal.values("tenant")[0]
        # emitted through ssoio, so the room's field-visibility rules apply
        change = {"order": payload["order"], "status": payload["status"], "by": principal.username}
        await sso.emit("orders:changed", change, room=f"tenant:{tenant}")
        return {"order": payload["order"]}

    async def list_orders(_request: Request) -> JSONResponse:
        return JSONResponse(ORDERS)

    app = Starlette(
        routes=[Route("/orders", list_orders), Mount("/", app=sso.asgi_app)],
        lifespan=sso.lifespan,  # starts ssoio's timers and loads the issuers' keys
    )
    return app, sso


def main() -> None:
    settings = load_settings(os.environ.get("SSOIO_CONFIG", "config/ssoio.example.toml"))
    app, sso = create_app(settings)
    config = uvicorn_config(sso, settings.server.host, settings.server.port)
    config.app = app
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
