"""Access-token verification throughput: ssoio (fresh and cached) next to the raw floor.

The floor is what no verifier can beat: ``cryptography``'s RS256 verify plus the
cheapest possible claim checks, measured in the same run. ssoio's fresh path includes
everything: size and structure checks, issuer selection, algorithm and typ checks, the
key store lookup, the signature, every claim check and the cache insert.

Run: ``.venv/bin/python benchmarks/token_verify.py [--tokens N]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from ssoio.oidc.providers import IdentityProviders
from ssoio.process import GC_THRESHOLDS, tune_garbage_collector
from ssoio.settings import validate_raw

ISSUER = "https://idp.bench/realms/acme"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_tokens(private: rsa.RSAPrivateKey, count: int) -> list[str]:
    header = b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}).encode())
    now = int(time.time())
    tokens = []
    for i in range(count):
        claims = {
            "iss": ISSUER, "sub": f"user-{i}", "aud": "ssoio-api", "exp": now + 3600,
            "iat": now, "jti": f"j{i}", "client_id": "web", "scope": "openid chat",
            "realm_access": {"roles": ["staff"]}, "groups": ["/eng"], "tenant": "acme",
        }  # fmt: skip
        signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
        signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        tokens.append(f"{signing_input}.{b64(signature)}")
    return tokens


def raw_floor(private: rsa.RSAPrivateKey, tokens: list[str]) -> float:
    """cryptography verify + json + the minimal claim checks, per token, in seconds."""
    public = private.public_key()
    now = time.time()
    start = time.perf_counter()
    for token in tokens:
        head, body, sig = token.split(".")
        public.verify(
            base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
            f"{head}.{body}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if claims["iss"] != ISSUER or claims["aud"] != "ssoio-api" or claims["exp"] <= now:
            raise AssertionError("the floor must check claims too")
    return (time.perf_counter() - start) / len(tokens)


def joserfc_decode(private: rsa.RSAPrivateKey, tokens: list[str]) -> float:
    key = RSAKey.import_key(private.public_key())
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": "ssoio-api"},
        exp={"essential": True}, sub={"essential": True},
    )  # fmt: skip
    start = time.perf_counter()
    for token in tokens:
        decoded = jwt.decode(token, key, algorithms=["RS256"])
        registry.validate(decoded.claims)
    return (time.perf_counter() - start) / len(tokens)


async def ssoio_paths(private: rsa.RSAPrivateKey, tokens: list[str]) -> tuple[float, float]:
    jwk = {**RSAKey.import_key(private.public_key()).as_dict(), "kid": "k1", "use": "sig"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [jwk]})

    raw: dict[str, Any] = {
        "tokens": {"cache_size": len(tokens) + 10},
        "issuers": [
            {"name": "bench", "issuer": ISSUER, "audiences": ["ssoio-api"],
             "jwks_uri": f"{ISSUER}/certs"}
        ],
    }  # fmt: skip
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with IdentityProviders(validate_raw(raw, {}), http=http) as providers:
        await providers.warm()
        verify = providers.verifier.verify
        start = time.perf_counter()
        for token in tokens:
            await verify(token)
        fresh = (time.perf_counter() - start) / len(tokens)
        start = time.perf_counter()
        for _ in range(5):
            for token in tokens:
                await verify(token)
        cached = (time.perf_counter() - start) / (5 * len(tokens))
    await http.aclose()
    return fresh, cached


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tune_garbage_collector()  # as `ssoio serve` does; applies to every path measured
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = make_tokens(private, args.tokens)

    floor = best_of(args.runs, lambda: raw_floor(private, tokens))
    jose = best_of(args.runs, lambda: joserfc_decode(private, tokens))
    results = [asyncio.run(ssoio_paths(private, tokens)) for _ in range(args.runs)]
    fresh = min(r[0] for r in results)
    cached = min(r[1] for r in results)

    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}")
    print(f"tokens: {args.tokens} distinct RS256 (2048-bit), best of {args.runs} runs")
    print(f"gc thresholds: {GC_THRESHOLDS} (as under `ssoio serve`)\n")
    print("| path | us / token | tokens / s | ratio to raw floor |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in [
        ("raw cryptography verify + minimal claim checks (floor)", floor),
        ("joserfc jwt.decode + claims registry", jose),
        ("ssoio fresh token (every check, cache insert)", fresh),
        ("ssoio cached token (hash-keyed hit)", cached),
    ]:
        print(f"| {name} | {seconds * 1e6:.1f} | {1 / seconds:,.0f} | {seconds / floor:.2f}x |")


if __name__ == "__main__":
    main()
