"""``GET /metrics`` (Prometheus text format), optionally behind a static bearer token
(required in production mode unless metrics have their own loopback listener)."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ssoio.config.operations import MetricsSettings
from ssoio.errors import TokenMissing
from ssoio.metrics import Metrics
from ssoio.responses import error_response

__all__ = ["metrics_route"]


def metrics_route(metrics: Metrics, settings: MetricsSettings) -> Route:
    """The metrics endpoint. With ``metrics.bearer_token`` set, scrapers must send it
    (Prometheus' ``authorization`` setting), compared in constant time."""
    expected = settings.bearer_token.get_secret_value()

    async def scrape(request: Request) -> Response:
        if expected:
            # RFC 6750 §2.1: "Bearer" (any case), one space, the token
            scheme, _, sent = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                sent.encode(), expected.encode()
            ):
                return error_response(TokenMissing("the metrics endpoint needs its bearer token"))
        return Response(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return Route(settings.path, scrape, methods=["GET"])
