"""`next` after login: same-origin relative paths only (open-redirect table)."""

from __future__ import annotations

import pytest

from ssoio.web.redirects import safe_next


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example/",
        "http://evil.example",
        "//evil.example",
        "//evil.example/path",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",  # browsers strip tabs: //evil.example
        "/\n/evil.example",
        "/\r/evil.example",
        "/ /evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "@evil.example",
        "https:evil.example",
        "/\x00/evil.example",
        "",
        None,
        42,
        ["/"],
        "/" + "a" * 3000,
        "\u3000/evil.example",
    ],
)
def test_refused(value: object) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize(
    "value",
    ["/", "/rooms", "/rooms?tab=chat&x=1", "/a/b#frag", "/tenant:acme:general", "/%2F%2Fx"],
)
def test_accepted(value: str) -> None:
    assert safe_next(value) == value
