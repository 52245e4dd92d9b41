"""Checking a parsed JWS against its issuer's published keys (shared by access, ID and
logout tokens)."""

from __future__ import annotations

from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry

from ssoio.config.model import IssuerSettings
from ssoio.errors import AlgorithmNotAllowed, KeyUnknown, SignatureInvalid
from ssoio.oidc.compact import CompactJWS
from ssoio.oidc.jwks import KeyStore, kid_detail

__all__ = ["check_signature", "verify_with"]


async def check_signature(keys: KeyStore, issuer: IssuerSettings, jws: CompactJWS) -> Key:
    """The signature must verify with ``issuer``'s key for the token's kid and alg; that
    key is returned.

    :raises AlgorithmNotAllowed | KeyUnknown | IdpUnavailable | SignatureInvalid:
    """
    if jws.alg not in issuer.algorithms:
        raise AlgorithmNotAllowed()
    try:
        key = keys.cached_key(issuer, jws.kid, jws.alg)
        if key is None:
            key = await keys.key_for(issuer, jws.kid, jws.alg)
    except (KeyUnknown, AlgorithmNotAllowed) as refusal:
        raise refusal.explained(
            **kid_detail(jws.kid, jws.alg, keys.known_kids(issuer), issuer)
        ) from None
    try:
        verify_with(jws, key)
    except SignatureInvalid as refusal:
        # the signature itself is never shown: only which key it was checked with
        raise refusal.explained(
            seen={"kid": jws.kid, "alg": jws.alg},
            expected=f"a signature by the key {key.kid or key.thumbprint()} of {issuer.name}",
            hint="a token altered after signing, or signed by another party with a reused kid",
        ) from None
    return key


def verify_with(jws: CompactJWS, key: Key) -> None:
    """:raises SignatureInvalid:"""
    model = JWSRegistry.algorithms[jws.alg]
    try:
        valid = model.verify(jws.signing_input, jws.signature, key)
    except (JoseError, ValueError, TypeError) as exc:
        raise SignatureInvalid() from exc
    if not valid:
        raise SignatureInvalid()
