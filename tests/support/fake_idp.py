"""An in-process identity provider behind ``httpx.MockTransport``, for unit tests.

It serves discovery, JWKS and introspection, counts every request by URL, and lets a
test switch it down, make it answer junk, or rotate keys.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.forge import SigningKey

__all__ = ["FakeIdp"]


@dataclass
class FakeIdp:
    issuer: str = "https://idp.test/realms/acme"
    keys: list[SigningKey] = field(default_factory=list)
    down: bool = False
    jwks_body: bytes | None = None
    discovery_issuer: str | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)  # merged over discovery()
    introspection: dict[str, Any] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    forms: list[dict[str, str]] = field(default_factory=list)

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token/introspect"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self.keys]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "introspection_endpoint": self.introspection_endpoint,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            **self.extra_metadata,
        }

    def fetches(self, url: str) -> int:
        return self.requests[url]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests[url] += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if url == f"{self.issuer}/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery())
        if url == self.jwks_uri:
            body = self.jwks_body if self.jwks_body is not None else json.dumps(self.jwks())
            return httpx.Response(200, content=body)
        if url == self.introspection_endpoint and request.method == "POST":
            form = dict(httpx.QueryParams(request.content.decode()))
            self.forms.append(form)
            return httpx.Response(200, json=self.introspection.get(form.get("token", ""), {}))
        return httpx.Response(404, json={"error": "not_found"})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
