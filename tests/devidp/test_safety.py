"""The development IdP refuses production mode and non-loopback URLs, and says so loudly."""

from __future__ import annotations

import logging

import pytest

from ssoio.devidp import DevIdp
from ssoio.devidp.directory import load_directory
from ssoio.errors import ConfigError
from tests.devidp.harness import USERS_FILE


def test_production_mode_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        DevIdp.from_files(USERS_FILE, "http://127.0.0.1:8000", mode="production")
    assert [problem.path for problem in caught.value.problems] == ["mode"]
    assert "development" in caught.value.message


@pytest.mark.parametrize(
    "public_url",
    [
        "http://0.0.0.0:8000",
        "http://192.168.1.20:8000",
        "https://chat.example.com",
        "http://127.0.0.1.example.com:8000",
        "ftp://127.0.0.1/",
    ],
)
def test_a_non_loopback_url_is_refused(public_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DevIdp.from_files(USERS_FILE, public_url, mode="development")
    assert [problem.path for problem in caught.value.problems] == ["server.public_url"]


def test_the_constructor_checks_too() -> None:
    directory = load_directory(USERS_FILE, "http://127.0.0.1:8000")
    with pytest.raises(ConfigError) as caught:
        DevIdp(directory, "http://10.0.0.1:8000", mode="production")
    assert {p.path for p in caught.value.problems} == {"mode", "server.public_url"}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_starts_with_a_loud_warning(host: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ssoio.devidp"):
        idp = DevIdp.from_files(USERS_FILE, f"http://{host}:8000", mode="development")
    assert idp.issuer == f"http://{host}:8000/dev-idp"
    assert "DEVELOPMENT ONLY" in caplog.text
