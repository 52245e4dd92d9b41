"""The ``ssoio`` command: check-config, token verify (more commands join as they land).

Exit statuses: 0 success, 1 a refusal (token refused, decision denied), 2 bad input
or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from ssoio.config import Settings, load_settings
from ssoio.errors import AuthenticationError, ConfigError, Problem
from ssoio.oidc.providers import IdentityProviders

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssoio", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(run=_check_config)

    token = commands.add_parser("token", help="access-token tools")
    token_commands = token.add_subparsers(required=True, metavar="ACTION")
    verify = token_commands.add_parser("verify", help="verify tokens; '-' reads them from stdin")
    verify.add_argument("--config", required=True)
    verify.add_argument("--issuer", help="accept only this issuer (by name)")
    verify.add_argument("token", help="the access token, or - to read one per line from stdin")
    verify.set_defaults(run=_token_verify)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    load_settings(args.file)
    print("ok")
    return 0


def _token_verify(args: argparse.Namespace) -> int:
    settings = _only_issuer(load_settings(args.config), args.issuer)
    from_stdin = args.token == "-"  # noqa: S105 - "-" is the stdin marker, not a secret
    tokens = _stdin_tokens(sys.stdin) if from_stdin else [args.token]
    return asyncio.run(_verify_all(settings, tokens, sys.stdout))


def _only_issuer(settings: Settings, name: str | None) -> Settings:
    if name is None:
        return settings
    issuer = settings.issuer_named(name)
    if issuer is None:
        names = ", ".join(i.name for i in settings.issuers)
        raise ConfigError([Problem("--issuer", f"no issuer named {name!r} (have: {names})")])
    return settings.model_copy(update={"issuers": (issuer,)})


def _stdin_tokens(stream: TextIO) -> Iterable[str]:
    return (line.strip() for line in stream if line.strip())


async def _verify_all(settings: Settings, tokens: Iterable[str], out: TextIO) -> int:
    status = 0
    async with IdentityProviders(settings) as providers:
        for token in tokens:
            try:
                verified = await providers.verifier.verify(token)
            except AuthenticationError as refusal:
                status = 1
                line: dict[str, Any] = {"ok": False, **refusal.as_dict()}
            else:
                claims = dict(verified.claims)
                line = {"ok": True, "issuer": verified.issuer.name, "claims": claims}
            print(json.dumps(line, sort_keys=True), file=out, flush=True)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
