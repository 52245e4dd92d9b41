"""Finding the credential a connecting client presents (DESIGN.md wire contract).

Order: ``auth.token``, then ``Authorization: Bearer``, then the ssoio session cookie.
The first credential *present* decides: an invalid one fails the connect and never falls
through to the next source (a present-but-broken credential is an attack or a bug, not a
reason to try the cookie the browser attached anyway). A token in the query string is
refused unless ``server.insecure_allow_query_token``: URLs end up in proxy and access logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal
from urllib.parse import parse_qs

from ssoio.errors import TokenMalformed, TokenMissing

__all__ = ["Credential", "find_credential"]

Source = Literal["auth", "header", "cookie", "query"]
_QUERY_NAMES = ("token", "access_token")


@dataclass(frozen=True, slots=True)
class Credential:
    """What the client presented: a token, or (``source == "cookie"``) a session id."""

    value: str
    source: Source

    def __repr__(self) -> str:  # never show the secret itself
        return f"Credential(source={self.source!r})"


def find_credential(
    auth: object, environ: Mapping[str, Any], *, cookie_name: str, allow_query: bool
) -> Credential:
    """The one credential that decides this connect.

    :raises TokenMissing: no credential at all.
    :raises TokenMalformed: a credential is present but unusable, or sent in the query.
    """
    query_token = _query_token(environ)
    if query_token is not None and not allow_query:
        raise TokenMalformed("tokens in the query string are refused; send auth.token instead")
    found = _from_auth(auth) or _from_header(environ) or _from_cookie(environ, cookie_name)
    if found is not None:
        return found
    if query_token is not None:
        return Credential(query_token, "query")
    raise TokenMissing(detail=_NOTHING)


_NOTHING = {
    "seen": "no auth.token, no Authorization header, no session cookie",
    "expected": "auth: {token}, Authorization: Bearer TOKEN, or the session cookie",
}


def _from_auth(auth: object) -> Credential | None:
    if auth is None:
        return None
    if not isinstance(auth, dict):
        raise TokenMalformed("the connect auth payload must be an object")
    if "token" not in auth:
        return None
    token = auth["token"]
    if not isinstance(token, str):
        raise TokenMalformed("auth.token must be a string")
    if not token:
        raise TokenMissing("auth.token is empty")
    return Credential(token, "auth")


def _from_header(environ: Mapping[str, Any]) -> Credential | None:
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _, token = str(header).strip().partition(" ")
    if scheme.lower() != "bearer":  # RFC 6750 §2.1; the scheme is case-insensitive
        raise TokenMalformed("the Authorization header must use the Bearer scheme")
    token = token.strip()
    if not token:
        raise TokenMissing("the Authorization header holds no token")
    return Credential(token, "header")


def _from_cookie(environ: Mapping[str, Any], name: str) -> Credential | None:
    raw = environ.get("HTTP_COOKIE")
    if not raw:
        return None
    try:
        morsel = SimpleCookie(str(raw)).get(name)
    except CookieError:
        return None
    if morsel is None:
        return None
    if not morsel.value:
        raise TokenMissing("the session cookie is empty")
    return Credential(morsel.value, "cookie")


def _query_token(environ: Mapping[str, Any]) -> str | None:
    raw = str(environ.get("QUERY_STRING", ""))
    if "token" not in raw:  # the common case, without parsing the query on every connect
        return None
    query = parse_qs(raw)
    for name in _QUERY_NAMES:
        values = query.get(name)
        if values:
            return values[0]
    return None
