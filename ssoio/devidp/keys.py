"""The development provider's signing keys: RS256, generated at start, rotatable live.

The newest key signs. Older keys stay published in the JWKS, so tokens they signed keep
verifying until they expire (OIDC Core §10.1.1: publish the new key before using it is
what a real provider does; here, relying parties find a new ``kid`` by refetching).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from joserfc.jwk import KeySet, RSAKey

__all__ = ["SigningKeys"]

log = logging.getLogger(__name__)


def _new_key() -> RSAKey:
    kid = secrets.token_urlsafe(12)  # random: a relying party must not guess the next one
    return RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )


class SigningKeys:
    """RSA keys, newest first; at most ``keep`` are published.

    :param keep: keys kept after a rotation (the signing one included), so repeated
        rotations cannot grow the JWKS without bound.
    """

    def __init__(self, keep: int = 4) -> None:
        self._keep = max(keep, 1)
        self._keys = [_new_key()]

    @property
    def current(self) -> RSAKey:
        """The key that signs from now on."""
        return self._keys[0]

    @property
    def kids(self) -> list[str]:
        """Published key ids, the signing one first."""
        return [str(key.kid) for key in self._keys]

    def rotate(self) -> str:
        """Make a new signing key; the old ones stay published. Returns the new ``kid``."""
        self._keys = [_new_key(), *self._keys][: self._keep]
        log.warning("devidp.keys.rotated kid=%s published=%d", self.current.kid, len(self._keys))
        return str(self.current.kid)

    def public_jwks(self) -> dict[str, Any]:
        """The JWK Set document (RFC 7517 §5): public members only."""
        return {"keys": [key.as_dict(private=False) for key in self._keys]}

    def verification_set(self) -> KeySet:
        """The published keys, to check tokens this provider issued."""
        return KeySet([RSAKey.import_key(key.as_dict(private=False)) for key in self._keys])
