"""Configuration: interpolation, strict typing, every problem at once, the example file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ssoio.config import Settings
from ssoio.config.interpolation import interpolate
from ssoio.errors import ConfigError
from ssoio.settings import load_settings, parse_settings
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "ssoio.example.toml"

MINIMAL = """
[[issuers]]
name = "acme"
issuer = "https://idp.test/realms/acme"
audiences = ["ssoio-api"]
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, env or {})
    return [str(p) for p in caught.value.problems]


class TestInterpolation:
    """``${NAME}`` / ``${NAME:-default}`` over string values only."""

    @pytest.mark.parametrize(
        ("text", "env", "expected"),
        [
            ("${A}", {"A": "x"}, "x"),
            ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
            ("${A:-dflt}", {}, "dflt"),
            ("${A:-dflt}", {"A": ""}, "dflt"),
            ("${A:-}", {}, ""),
            ("${A:-dflt}", {"A": "set"}, "set"),
            ("$${A}", {"A": "x"}, "${A}"),
            ("cost: $$5", {}, "cost: $5"),
            ("${A}${B}", {"A": "1", "B": "2"}, "12"),
            ("$A", {"A": "x"}, "$A"),
            ("${A}", {"A": "${B}", "B": "no"}, "${B}"),  # no recursive expansion
        ],
    )
    def test_values(self, text: str, env: dict[str, str], expected: str) -> None:
        assert interpolate(text, env) == (expected, [])

    def test_unset_variable_is_a_problem_with_its_path(self) -> None:
        value, found = interpolate({"issuers": [{"issuer": "${MISSING}"}]}, {})
        assert value == {"issuers": [{"issuer": ""}]}
        assert [str(p) for p in found] == [
            "issuers[0].issuer: environment variable MISSING is not set"
        ]

    def test_non_strings_are_untouched(self) -> None:
        raw: dict[str, Any] = {"n": 5, "b": True, "l": [1, "${A}"]}
        assert interpolate(raw, {"A": "x"}) == ({"n": 5, "b": True, "l": [1, "x"]}, [])

    def test_numbers_may_come_from_the_environment(self) -> None:
        text = MINIMAL + 'leeway_s = "${LEEWAY:-10}"\n'
        assert parse_settings(text, {"LEEWAY": "45"}).issuers[0].leeway_s == 45


class TestValidation:
    """Unknown keys and wrong types are errors, all reported at once with key paths."""

    def test_minimal_config_gets_defaults(self) -> None:
        settings = parse_settings(MINIMAL, {})
        issuer = settings.issuers[0]
        assert issuer.algorithms == ("RS256",)
        assert issuer.token_types == ("at+jwt",)
        assert issuer.strict_rfc9068
        assert issuer.leeway_s == 30
        assert settings.tokens.max_bytes == 16384
        assert settings.mode == "development"

    def test_settings_are_frozen(self) -> None:
        settings = parse_settings(MINIMAL, {})
        with pytest.raises(ValueError, match="frozen"):
            settings.mode = "production"  # type: ignore[misc]

    def test_three_mistakes_reported_together(self) -> None:
        text = MINIMAL.replace('audiences = ["ssoio-api"]', 'audiences = "ssoio-api"\ncolour = 1')
        text += '[tokens]\nmax_bytes = "lots"\n'
        assert problems(text) == [
            "tokens.max_bytes: Input should be a valid integer, unable to parse string as an "
            "integer",
            "issuers[0].audiences: Input should be a valid tuple",
            "issuers[0].colour: unknown key",
        ]

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ('mode = "prod"\n', "mode: Input should be 'development' or 'production'"),
            ("surprise = true\n", "surprise: unknown key"),
            ("[[issuers]]\n", "issuers[1].name: required key is missing"),
            ("", None),
        ],
    )
    def test_top_level_mistakes(self, change: str, expected: str | None) -> None:
        text = change + MINIMAL if not change.startswith("[[") else MINIMAL + change
        if expected is None:
            parse_settings(text, {})
        else:
            assert expected in problems(text)

    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ('issuer = "ftp://idp.test"', "issuers[0].issuer: must be an absolute http(s) URL"),
            (
                'issuer = "https://idp.test/?realm=a"',
                "issuers[0].issuer: an issuer identifier has no query or fragment",
            ),
            ('algorithms = ["none"]', "issuers[0].algorithms[0]: Input should be"),
            ("algorithms = []", "issuers[0].algorithms: Tuple should have at least 1 item"),
            ('token_types = ["id+jwt"]', "issuers[0].token_types[0]: Input should be"),
            ("leeway_s = 3600", "issuers[0].leeway_s: Input should be less than or equal to 300"),
            ("leeway_s = -1", "issuers[0].leeway_s: Input should be greater than or equal to 0"),
            ('name = "has space"', "issuers[0].name: String should match pattern"),
            ('jwks_uri = "certs.json"', "issuers[0].jwks_uri: must be an absolute http(s) URL"),
        ],
    )
    def test_issuer_field_mistakes(self, line: str, expected: str) -> None:
        key = line.split(" = ")[0]
        text = re.sub(rf"^{key} = .*$", "", MINIMAL, flags=re.M) + line + "\n"
        assert any(p.startswith(expected) for p in problems(text)), problems(text)

    def test_cross_field_problems(self) -> None:
        text = MINIMAL + "[issuers.keys]\njwks_ttl_s = 600\nstale_limit_s = 60\n" + MINIMAL
        assert problems(text) == [
            "issuers[0].name: is used by more than one issuer",
            "issuers[1].name: is used by more than one issuer",
            "issuers[0].issuer: is used by more than one issuer",
            "issuers[1].issuer: is used by more than one issuer",
            "issuers[0].keys.stale_limit_s: must be at least keys.jwks_ttl_s",
        ]

    def test_only_one_issuer_may_introspect(self) -> None:
        block = (
            '[issuers.introspection]\nendpoint = "https://idp.test/introspect"\n'
            'client_id = "c"\nclient_secret = "s"\n'
        )
        second = MINIMAL.replace('"acme"', '"b"').replace("/acme", "/b")
        assert problems(MINIMAL + block + second + block) == [
            "issuers[1].introspection: only one issuer may use introspection"
        ]

    def test_secrets_are_masked(self) -> None:
        text = MINIMAL + (
            '[issuers.introspection]\nendpoint = "https://idp.test/introspect"\n'
            'client_id = "c"\nclient_secret = "${SECRET}"\n'
        )
        settings = parse_settings(text, {"SECRET": "hunter2"})
        assert "hunter2" not in repr(settings)
        assert "hunter2" not in str(settings.model_dump())

    def test_toml_syntax_error(self) -> None:
        assert problems("[[issuers]\n")[0].startswith("TOML syntax error:")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read"):
            load_settings(tmp_path / "absent.toml")


class TestExampleFile:
    """``config/ssoio.example.toml`` runs as is and documents every key."""

    def test_loads_with_an_empty_environment(self) -> None:
        settings = load_settings(EXAMPLE, env={})
        assert settings.issuers[0].issuer == "http://127.0.0.1:8000/dev-idp"

    def test_environment_points_it_at_another_provider(self) -> None:
        env = {"SSOIO_ISSUER": "https://kc.example.com/realms/acme", "SSOIO_AUDIENCE": "chat"}
        issuer = load_settings(EXAMPLE, env=env).issuers[0]
        assert (issuer.issuer, issuer.audiences) == (env["SSOIO_ISSUER"], ("chat",))

    def test_documents_every_key(self) -> None:
        text = EXAMPLE.read_text()
        # a key is documented when it is assigned (maybe commented out) or is a table header
        missing = [
            name
            for name in _field_names(Settings)
            if not re.search(rf"\b{name}\s*=|\[\[?([\w.]+\.)?{name}\]", text)
        ]
        assert missing == []


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for arg in getattr(info.annotation, "__args__", (info.annotation,)):
            inner = getattr(arg, "__args__", (arg,))[0]
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                names |= _field_names(inner)
            elif isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg)
    return names


class TestCheckConfigCommand:
    """``ssoio check-config FILE``: "ok" and 0, or every problem and 2."""

    async def test_example_is_ok(self) -> None:
        result = await run_cli("check-config", str(EXAMPLE))
        assert (result.status, result.stdout) == (0, "ok\n")

    async def test_three_mistakes(self, tmp_path: Path) -> None:
        config = tmp_path / "bad.toml"
        config.write_text(
            'mode = "staging"\n[tokens]\ncache_size = -5\n'
            '[[issuers]]\nname = "a"\nissuer = "https://idp.test"\naudience = ["x"]\n'
        )
        result = await run_cli("check-config", str(config))
        assert result.status == 2
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            "mode: Input should be 'development' or 'production'",
            "tokens.cache_size: Input should be greater than or equal to 0",
            "issuers[0].audiences: required key is missing",
            "issuers[0].audience: unknown key",
        ]

    async def test_missing_file(self, tmp_path: Path) -> None:
        result = await run_cli("check-config", str(tmp_path / "nope.toml"))
        assert result.status == 2
        assert "cannot read" in result.stderr
        assert "Traceback" not in result.stderr
