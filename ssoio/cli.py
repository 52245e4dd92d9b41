"""The ``ssoio`` command: check-config, token verify, explain, policy test.

Exit statuses: 0 success, 1 a refusal (a token refused, a decision denied, a policy
case failed), 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ssoio.config import Settings
from ssoio.errors import AuthenticationError, ConfigError, IdpUnavailable, Problem, SsoioError
from ssoio.oidc.compact import parse_compact
from ssoio.oidc.families import guess_family
from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.cases import run_cases
from ssoio.policy.engine import Policy
from ssoio.policy.explain import Question, explain
from ssoio.policy.principal import Principal
from ssoio.settings import load_settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except SsoioError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        for line in _detail_lines(exc.detail):
            print(f"  {line}", file=sys.stderr)
        return 2


def _detail_lines(detail: dict[str, Any]) -> list[str]:
    """An error's operator detail as ``seen`` / ``expected`` / ``hint`` lines."""
    return [
        f"{name:<9}{value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"
        for name, value in detail.items()
    ]


class _Parser(argparse.ArgumentParser):
    """argparse echoes offending arguments in its errors; a token must never be echoed."""

    def error(self, message: str) -> NoReturn:
        super().error(_JWT_LIKE.sub("<token>", message))


_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*|[^\s']{60,}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ssoio", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--config", required=True)
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="run the demo (development IdP + demo page)")
    demo.add_argument("--config", default="config/ssoio.example.toml")
    demo.add_argument("--users", default="config/dev-users.toml")
    demo.add_argument("--host", default="127.0.0.1", help="loopback only")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(run=_demo)

    rotate = (
        commands.add_parser("dev-idp", help="development IdP tools")
        .add_subparsers(required=True, metavar="ACTION")
        .add_parser("rotate-keys", help="new signing key for a running demo's IdP")
    )
    rotate.add_argument("--url", default="http://127.0.0.1:8000", help="the demo's URL")
    rotate.set_defaults(run=_rotate_keys)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(run=_check_config)

    token = commands.add_parser("token", help="access-token tools")
    verify = token.add_subparsers(required=True, metavar="ACTION").add_parser(
        "verify", help="verify tokens; '-' reads them from stdin"
    )
    verify.add_argument("--config", required=True)
    verify.add_argument("--issuer", help="accept only this issuer (by name)")
    verify.add_argument("token", help="the access token, or - to read one per line from stdin")
    verify.set_defaults(run=_token_verify)

    _explain_parser(commands.add_parser("explain", help="show a principal and decisions"))

    doctor = commands.add_parser(
        "doctor", help="check a configuration against its provider (and a token)"
    )
    doctor.add_argument("--config", required=True)
    doctor.add_argument("--issuer", help="check only this issuer (by name)")
    doctor.add_argument("--token", help="an access token to check too, or - to read it from stdin")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(run=_doctor)

    policy = commands.add_parser("policy", help="policy tools")
    cases = policy.add_subparsers(required=True, metavar="ACTION").add_parser(
        "test", help="run a table of policy cases"
    )
    cases.add_argument("file")
    cases.add_argument("--config", help="the configuration (default: the file's `config`)")
    cases.set_defaults(run=_policy_test)
    return parser


def _explain_parser(explain_cmd: argparse.ArgumentParser) -> None:
    explain_cmd.add_argument("--config", required=True)
    source = explain_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--token", help="an access token (signature checked only with --verify)")
    source.add_argument("--claims", help="a JSON file of claims")
    explain_cmd.add_argument("--issuer", help="the issuer (by name) whose mapping applies")
    explain_cmd.add_argument("--verify", action="store_true", help="verify --token fully")
    explain_cmd.add_argument("--room", action="append", default=[], help="repeatable")
    explain_cmd.add_argument(
        "--action", choices=["join", "publish", "presence"], default="join",
        help="what is asked of every --room (default join)",
    )  # fmt: skip
    explain_cmd.add_argument("--event", action="append", default=[], help="repeatable")
    explain_cmd.add_argument(
        "--payload", action="append", default=[],
        help="an event's JSON payload (checks it fully); one per --event, in order",
    )  # fmt: skip
    explain_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    explain_cmd.set_defaults(run=_explain)


def _serve(args: argparse.Namespace) -> int:
    from ssoio.serving import serve

    serve(load_settings(args.config), host=args.host, port=args.port, config_path=args.config)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ssoio.serving import run_demo

    run_demo(Path(args.config), Path(args.users), args.host, args.port)
    return 0


def _rotate_keys(args: argparse.Namespace) -> int:
    import httpx

    from ssoio.devidp import MOUNT_PATH

    try:
        answer = httpx.post(f"{args.url.rstrip('/')}{MOUNT_PATH}/admin/rotate-keys", timeout=10)
    except httpx.HTTPError as exc:
        raise ConfigError(
            [Problem("--url", f"cannot reach the demo: {type(exc).__name__}")]
        ) from exc
    print(json.dumps(answer.json(), sort_keys=True))
    return 0 if answer.status_code == 200 else 1


def _check_config(args: argparse.Namespace) -> int:
    load_settings(args.file)
    print("ok")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """Exit 0 all ok, 1 warnings, 2 failures (a configuration that does not load: 2)."""
    from ssoio.doctor import Check, Report, diagnose

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        report = Report([Check("configuration", "fail", str(p)) for p in exc.problems])
    else:
        _only_issuer(settings, args.issuer)
        token = args.token
        if token == "-":  # noqa: S105 - "-" is the stdin marker, not a secret
            token = sys.stdin.readline().strip()
        report = asyncio.run(
            diagnose(settings, issuer=args.issuer, token=token, source=args.config)
        )
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        print("\n".join(report.lines()))
    return report.exit_status


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
                line: dict[str, Any] = {"ok": False, **refusal.for_operator()}
            else:
                claims = dict(verified.claims)
                line = {"ok": True, "issuer": verified.issuer.name, "claims": claims}
            print(json.dumps(line, sort_keys=True), file=out, flush=True)
    return status


def _explain(args: argparse.Namespace) -> int:
    settings = _only_issuer(load_settings(args.config), args.issuer)
    policy = Policy(settings)
    if any(i.claims.preset == "auto" for i in settings.issuers):
        asyncio.run(_choose_presets(settings, policy))
    principal, note = _explained_principal(args, settings, policy)
    questions = _questions(args)
    explanation = explain(policy, principal, questions)
    if args.json:
        print(json.dumps({**explanation.as_dict(), "token": note}, sort_keys=True))
    else:
        print("\n".join([f"token      {note}", *explanation.lines()]))
    return 0 if explanation.all_allowed else 1


def _questions(args: argparse.Namespace) -> list[Question]:
    """One question per --room and per --event, in that order (each answered on its own)."""
    if args.payload and len(args.payload) != len(args.event):
        counts = f"{len(args.payload)} payloads for {len(args.event)} events"
        raise ConfigError([Problem("--payload", f"{counts}: give one per --event, in order")])
    payloads = [_json_argument("--payload", p) for p in args.payload] or [None] * len(args.event)
    rooms = [Question(room=room, action=args.action) for room in args.room]
    return rooms + [Question(event=e, payload=p) for e, p in zip(args.event, payloads, strict=True)]


def _explained_principal(
    args: argparse.Namespace, settings: Settings, policy: Policy
) -> tuple[Principal, str]:
    if args.claims is not None:
        claims = _json_argument("--claims", _read(args.claims))
        if not isinstance(claims, dict):
            raise ConfigError([Problem("--claims", "must hold a JSON object")])
        return policy.principal_from_claims(claims, _issuer_for(settings, claims)), "claims file"
    if args.verify:
        verified = asyncio.run(_verify_one(settings, args.token))
        principal = policy.principal_from_claims(verified.claims, verified.issuer.name)
        return principal, "verified (signature and every claim checked)"
    claims = parse_compact(args.token, settings.tokens.max_bytes).claims
    note = "signature NOT checked (pass --verify to check it)"
    return policy.principal_from_claims(claims, _issuer_for(settings, claims)), note


async def _choose_presets(settings: Settings, policy: Policy) -> None:
    """``preset = "auto"``: what ``serve`` would pick, from each provider's metadata."""
    async with IdentityProviders(settings) as providers:
        for issuer in [i for i in settings.issuers if i.claims.preset == "auto"]:
            try:
                metadata = await providers.discovery.get(issuer)
            except IdpUnavailable:
                print(f"preset     {issuer.name}: auto, provider unreachable: generic",
                      file=sys.stderr)  # fmt: skip
                continue
            family = guess_family(metadata.raw)
            policy.use_preset(issuer.name, family.preset)
            print(f"preset     {issuer.name}: auto picks {family.preset} ({family.product})",
                  file=sys.stderr)  # fmt: skip


async def _verify_one(settings: Settings, token: str) -> Any:
    async with IdentityProviders(settings) as providers:
        return await providers.verifier.verify(token)


def _issuer_for(settings: Settings, claims: dict[str, Any]) -> str:
    matching = [i.name for i in settings.issuers if i.issuer == claims.get("iss")]
    return matching[0] if matching else settings.issuers[0].name


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(path, f"cannot read: {exc.strerror}")]) from exc


def _json_argument(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError([Problem(name, f"not valid JSON: {exc}")]) from exc


def _policy_test(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        document = tomllib.loads(_read(args.file))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(args.file, f"TOML syntax error: {exc}")]) from exc
    config = args.config or (path.parent / str(document.get("config", ""))).as_posix()
    results = run_cases(Policy(load_settings(config)), document)
    failures = [r for r in results if not r.passed]
    for result in failures:
        print(f"FAIL cases[{result.index}] {result.summary}: {result.detail}")
    print(f"{len(results)} cases, {len(results) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
