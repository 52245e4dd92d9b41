"""A token forge: builds compact JWS from raw parts with plain ``cryptography``.

JOSE libraries refuse to emit broken tokens; the tests need exactly those, and they
must not share code with the verifier under test.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["SigningKey", "b64url", "forge", "sign"]


_SIGNING_ALGS = {
    f"{family}{size}" for family in ("RS", "PS", "ES", "HS") for size in (256, 384, 512)
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """A private key with its kid; ``jwk`` is the public JWK an IdP would publish."""

    kid: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            numbers = self.private.public_key().public_numbers()
            base = {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        else:
            point = self.private.public_key().public_numbers()
            base = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(point.x.to_bytes(32, "big")),
                "y": b64url(point.y.to_bytes(32, "big")),
            }
        return {**base, "kid": self.kid, "use": "sig", **self.extra}


def sign(alg: str, signing_input: bytes, key: SigningKey | bytes) -> bytes:
    """Sign like a JWS issuer would; ``bytes`` keys are HMAC secrets."""
    size = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if isinstance(key, bytes):
        mac = hmac.HMAC(key, size)
        mac.update(signing_input)
        return mac.finalize()
    if isinstance(key.private, rsa.RSAPrivateKey):
        if alg.startswith("PS"):
            pss = padding.PSS(mgf=padding.MGF1(size), salt_length=size.digest_size)
            return key.private.sign(signing_input, pss, size)
        return key.private.sign(signing_input, padding.PKCS1v15(), size)
    r, s = decode_dss_signature(key.private.sign(signing_input, ec.ECDSA(size)))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def forge(
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    key: SigningKey | bytes | None,
    *,
    alg: str | None = None,
) -> str:
    """A compact JWS of exactly these parts, signed with ``key`` (unsigned when None)."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(head)}.{b64url(body)}".encode()
    if key is None:
        return signing_input.decode() + "."
    claimed = header.get("alg") if isinstance(header, dict) else None
    used = alg or (claimed if claimed in _SIGNING_ALGS else "RS256")
    return signing_input.decode() + "." + b64url(sign(used, signing_input, key))
