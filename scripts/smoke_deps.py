"""Install ssoio in a throwaway virtual environment and smoke-test it there.

    python3 scripts/smoke_deps.py lowest   # every direct dependency at its declared floor
    python3 scripts/smoke_deps.py pinned   # constraints.txt, as make install does
    python3 scripts/smoke_deps.py newest   # whatever pip picks today (what a user gets)

``lowest`` turns each ``name>=floor`` of pyproject.toml's ``[project] dependencies`` into
``name==floor`` in a pip constraints file (transitive dependencies float), installs ssoio
from a copy of this checkout (the runtime dependencies only: no dev extras, so a missing
declaration shows), checks that pip installed each floor, then runs ``smoke`` with the new
environment's Python, outside the checkout:

1. every module of the installed ``ssoio`` package imports;
2. ``ssoio check-config config/ssoio.example.toml``;
3. ``ssoio serve`` of the example configuration against a minimal OpenID provider served
   here (discovery and JWKS on 127.0.0.1; tokens signed with joserfc), ready on /readyz;
4. the WebSocket handshake's 101 answer carries one valid Date; a Socket.IO CONNECT with a
   forged signature is refused (``signature_invalid``), one with a valid access token is
   accepted, ``room:join`` and ``chat:send`` are acknowledged ``{"ok": true}`` and the
   relayed ``chat:message`` arrives; Engine.IO long-polling opens and closes;
5. SIGTERM: the server drains and stops, with no traceback, error or malformed-packet
   warning in its log;
6. steps 3 to 5 again with a cluster configuration (a throwaway redis-server), when
   redis-server is installed (required when CI=true).

Every wait is bounded; everything listens on and talks to 127.0.0.1 only. Any failure
exits non-zero. The driver needs only the standard library; ``smoke`` imports ssoio's
runtime dependencies (joserfc, websockets, httpx), installed in the throwaway environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.metadata
import json
import os
import pkgutil
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "ssoio.example.toml"
AUDIENCE = "ssoio-api"
ROOM = "tenant:acme:smoke"
TIMEOUT_S = 10.0  # any single wait: a healthy node answers in milliseconds
READY_TIMEOUT_S = 30.0  # start-up: imports, the provider's keys fetched
STOP_TIMEOUT_S = 30.0  # SIGTERM: drain (server.shutdown_grace_s = 10), then uvicorn stops

# PEP 508, as pyproject.toml writes it here: name[extras] specifiers ; markers
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)
_FLOOR = re.compile(r"^>=\s*(?P<version>[0-9][^,\s]*)$")


class SmokeError(Exception):
    """A step of the smoke test failed."""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def floors(pyproject: Path) -> list[tuple[str, str, str | None]]:
    """(name, floor, marker) for each runtime dependency; each must have a ``>=`` floor."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    result = []
    for requirement in project["dependencies"]:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SmokeError(f"cannot read the requirement {requirement!r}")
        specs = [s.strip() for s in match["spec"].split(",") if s.strip()]
        lower = [m["version"] for s in specs if (m := _FLOOR.match(s))]
        if len(lower) != 1:
            raise SmokeError(f"{requirement!r}: every dependency needs exactly one >= floor")
        marker = match["marker"].strip() if match["marker"] else None
        result.append((match["name"], lower[0], marker))
    return result


def floor_constraints(pyproject: Path) -> str:
    lines = [f"{name}=={version}" + (f"; {marker}" if marker else "")
             for name, version, marker in floors(pyproject)]  # fmt: skip
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The driver: a throwaway virtual environment, then the smoke test inside it.


def drive(mode: str, python: str, keep: bool, overrides: list[str]) -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ssoio-smoke-"))
    try:
        constraints = work / "constraints.txt"
        if mode == "lowest":
            text = _override(floor_constraints(ROOT / "pyproject.toml"), overrides)
            constraints.write_text(text, encoding="utf-8")
        elif mode == "pinned":
            shutil.copyfile(ROOT / "constraints.txt", constraints)
        else:
            constraints.write_text("", encoding="utf-8")
        source = _copy_source(work / "src")
        venv = work / "venv"
        _step(f"virtual environment ({python})", [python, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        _step(f"pip install -c {mode} constraints",
              [*pip, "install", "-qq", "-c", str(constraints), str(source)])  # fmt: skip
        print(f"smoke: installed in {time.monotonic() - started:.0f} s", flush=True)
        command = [str(venv / "bin" / "python"), str(ROOT / "scripts" / "smoke_deps.py"), "smoke",
                   "--config", str(EXAMPLE), "--ssoio", str(venv / "bin" / "ssoio")]  # fmt: skip
        if mode == "lowest":
            command += ["--expect", str(constraints)]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        _step("smoke test", command, cwd=work, env=env)
    finally:
        if keep:
            print(f"smoke: kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"smoke {mode}: passed in {time.monotonic() - started:.0f} s", flush=True)


def _override(constraints: str, overrides: list[str]) -> str:
    """Floors with some dependencies at other versions (``--with NAME==VERSION``), to
    find where a floor really is."""
    replaced = {_normalize(o.partition("==")[0]): o for o in overrides}
    lines = [replaced.pop(_normalize(line.partition("==")[0]), line)
             for line in constraints.splitlines()]  # fmt: skip
    if replaced:
        raise SmokeError(f"--with names no direct dependency: {', '.join(replaced.values())}")
    return "\n".join(lines) + "\n"


def _copy_source(target: Path) -> Path:
    """What pip needs to build ssoio, without build residue in the checkout."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, target / name)
    shutil.copytree(ROOT / "ssoio", target / "ssoio",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    return target


def _step(what: str, command: list[str], **kwargs: Any) -> None:
    print(f"smoke: {what}", flush=True)
    # 15 minutes: a cold pip cache downloads every wheel from the registry
    result = subprocess.run(command, check=False, timeout=900, **kwargs)
    if result.returncode != 0:
        raise SmokeError(f"{what} failed (exit status {result.returncode})")


# ---------------------------------------------------------------------------------------
# The smoke test, run by the throwaway environment's Python.


def smoke(config: Path, ssoio_command: str, expect: Path | None) -> None:
    if expect is not None:
        _check_versions(expect)
    _import_everything()
    _check_config(ssoio_command, config)
    asyncio.run(_serve_and_connect(ssoio_command, config))


def _check_versions(constraints: Path) -> None:
    """pip installed each declared floor (a constraint pip could not meet fails it)."""
    for line in constraints.read_text(encoding="utf-8").splitlines():
        name, _, rest = line.partition("==")
        wanted, _, _marker = rest.partition(";")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if _marker.strip():  # a platform-specific dependency, absent here
                continue
            raise SmokeError(f"{name} is not installed") from None
        if installed != wanted.strip():
            raise SmokeError(f"{name}: {installed} installed, the floor is {wanted.strip()}")
        print(f"smoke: {name}=={installed}", flush=True)


def _import_everything() -> None:
    ssoio = importlib.import_module("ssoio")
    location = Path(ssoio.__file__ or "").resolve()
    if not location.is_relative_to(Path(sys.prefix).resolve()):
        raise SmokeError(f"ssoio was imported from {location}, not from the environment")
    names = [m.name for m in pkgutil.walk_packages(ssoio.__path__, "ssoio.")]
    for name in names:
        importlib.import_module(name)
    print(f"smoke: imported {len(names) + 1} modules of ssoio", flush=True)


def _check_config(ssoio_command: str, config: Path) -> None:
    result = subprocess.run(
        [ssoio_command, "check-config", str(config)],
        capture_output=True, text=True, timeout=TIMEOUT_S * 3, check=False,
    )  # fmt: skip
    if result.returncode != 0 or result.stdout.strip() != "ok":
        raise SmokeError(f"check-config: exit {result.returncode}: {result.stderr[-2000:]}")
    print("smoke: check-config ok", flush=True)


async def _serve_and_connect(ssoio_command: str, config: Path) -> None:
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "smoke", "use": "sig", "alg": "RS256"})
    async with _provider(key) as issuer:
        for leg, extra_env in await _legs():
            print(f"smoke: -- {leg}", flush=True)
            async with _node(ssoio_command, config, issuer, extra_env) as url:
                await _ready(url)
                await _refused_connect(url, _token(key, issuer, forged=True))
                await _authenticated_events(url, _token(key, issuer))
                await _polling_opens(url)


async def _legs() -> list[tuple[str, dict[str, str]]]:
    """One node alone, then one node of a cluster (redis, python-socketio's Redis
    manager, ssoio's shared state) when redis-server is installed; CI must have it."""
    legs: list[tuple[str, dict[str, str]]] = [("single node", {})]
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            raise SmokeError("redis-server is not installed (make system-deps installs it)")
        print("smoke: redis-server not found: the cluster leg is left out", flush=True)
        return legs
    legs.append(("cluster node (redis)", {"SSOIO_SESSION_SECRET": "smoke-" + "s" * 40}))
    return legs


@contextlib.asynccontextmanager
async def _provider(key: Any) -> AsyncIterator[str]:
    """A minimal OpenID provider: discovery and JWKS (OIDC Discovery 1.0 §3, RFC 7517)."""
    documents: dict[str, bytes] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
            path = head.split(b" ", 2)[1].decode("ascii", "replace")
            body = documents.get(path)
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body if body is not None else b"{}"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    issuer = f"http://127.0.0.1:{port}/idp"
    documents["/idp/.well-known/openid-configuration"] = json.dumps({
        "issuer": issuer, "jwks_uri": f"{issuer}/jwks",
        "authorization_endpoint": f"{issuer}/authorize", "token_endpoint": f"{issuer}/token",
        "id_token_signing_alg_values_supported": ["RS256"],
    }).encode()  # fmt: skip
    documents["/idp/jwks"] = json.dumps({"keys": [key.as_dict(private=False)]}).encode()
    try:
        yield issuer
    finally:
        server.close()
        await server.wait_closed()


def _token(key: Any, issuer: str, forged: bool = False) -> str:
    """An access token for bob of the reference scenario (Keycloak-shaped claims)."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    now = int(time.time())
    claims = {
        "iss": issuer, "aud": AUDIENCE, "sub": "smoke-bob", "iat": now, "nbf": now,
        "exp": now + 300, "azp": "ssoio-demo", "scope": "openid profile email chat",
        "preferred_username": "bob", "email": "bob@acme.example", "tenant": "acme",
        "realm_access": {"roles": ["staff"]}, "groups": ["/sales"],
    }  # fmt: skip
    signer = RSAKey.generate_key(2048, parameters={"kid": "smoke"}) if forged else key
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "smoke"}
    return str(jwt.encode(header, claims, signer))


@contextlib.asynccontextmanager
async def _node(
    ssoio_command: str, config: Path, issuer: str, extra_env: dict[str, str]
) -> AsyncIterator[str]:
    """``ssoio serve`` of ``config`` (with a redis-server of its own for a cluster leg);
    SIGTERM at the end, which must drain and stop it cleanly."""
    async with contextlib.AsyncExitStack() as stack:
        if extra_env:
            redis_url = await stack.enter_async_context(_redis())
            extra_env = {**extra_env, "SSOIO_REDIS_URL": redis_url}
        port = _free_port()
        env = {**os.environ, "SSOIO_ISSUER": issuer, "SSOIO_AUDIENCE": AUDIENCE,
               "SSOIO_HOST": "127.0.0.1", "SSOIO_PORT": str(port),
               "SSOIO_PUBLIC_URL": f"http://127.0.0.1:{port}", **extra_env}  # fmt: skip
        log = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - read at the end
        process = await asyncio.create_subprocess_exec(
            ssoio_command, "serve", "--config", str(config),
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        failed = True
        try:
            yield f"127.0.0.1:{port}"
            failed = False
        finally:
            stopping = time.monotonic()
            status = await _stop(process)
            stopped_in = time.monotonic() - stopping
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
            problem = _unclean(status, text)
            if failed or problem:
                print(text[-6000:], file=sys.stderr, flush=True)
            if problem and not failed:
                raise SmokeError(problem)
        print(f"smoke: SIGTERM drained and stopped ssoio serve ({stopped_in:.1f} s)", flush=True)


async def _stop(process: asyncio.subprocess.Process) -> int | None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None


@contextlib.asynccontextmanager
async def _redis() -> AsyncIterator[str]:
    """A throwaway redis-server on 127.0.0.1, nothing written to disk."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise SmokeError("redis-server did not listen") from None
                await asyncio.sleep(0.05)
            else:
                writer.close()
                break
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), TIMEOUT_S)


def _unclean(status: int | None, log: str) -> str | None:
    """What was wrong with the node's stop and log, if anything. uvicorn raises the
    SIGTERM it handled again once it has stopped: -SIGTERM is a clean stop, as 0 is."""
    if status not in (0, -signal.SIGTERM):
        return f"ssoio serve did not stop cleanly on SIGTERM (status {status})"
    if '"event": "server.drain"' not in log:
        return "ssoio serve did not drain on SIGTERM"
    for sign in ("Traceback", "packet.malformed", '"level": "error"'):
        if sign in log:
            return f"ssoio serve logged {sign!r} (above)"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _ready(url: str) -> None:
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"http://{url}/readyz")).status_code == 200:
                    print("smoke: ssoio serve is ready", flush=True)
                    return
            await asyncio.sleep(0.2)
    raise SmokeError(f"ssoio serve was not ready within {READY_TIMEOUT_S:.0f} s")


class _Socket:
    """Engine.IO v4 over a WebSocket, Socket.IO v5 packets in it (``4`` + packet); pings
    (``2``) are answered (``3``) while waiting. Every wait is bounded."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def send(self, packet: str) -> None:
        await self.connection.send("4" + packet)

    async def receive(self, wanted: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            message = await asyncio.wait_for(self.connection.recv(), left)
            if message == "2":
                await self.connection.send("3")
            elif isinstance(message, str) and message.startswith("4") and wanted(message[1:]):
                return message[1:]
        raise SmokeError("no expected packet within the time limit")

    async def open(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.connection.recv(), TIMEOUT_S)
        if not (isinstance(message, str) and message.startswith("0")):
            raise SmokeError(f"expected the Engine.IO OPEN packet, got {str(message)[:80]!r}")
        opened: dict[str, Any] = json.loads(message[1:])
        return opened


@contextlib.asynccontextmanager
async def _websocket(url: str) -> AsyncIterator[_Socket]:
    from websockets.asyncio.client import connect

    address = f"ws://{url}/socket.io/?EIO=4&transport=websocket"
    async with connect(address, open_timeout=TIMEOUT_S, close_timeout=TIMEOUT_S) as connection:
        answer = connection.response
        _check_answer(answer.headers.get_all("Date") if answer is not None else [])
        socket = _Socket(connection)
        await socket.open()
        yield socket


def _check_answer(dates: list[str]) -> None:
    """ssoio answers the handshake itself and leaves the Date to uvicorn: exactly one,
    an HTTP-date (RFC 9110 §6.6.1, §5.6.7)."""
    import email.utils

    try:
        valid = len(dates) == 1 and email.utils.parsedate_to_datetime(dates[0]) is not None
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise SmokeError(f"the 101 answer's Date headers are {dates!r}, not one HTTP-date")


async def _refused_connect(url: str, forged: str) -> None:
    async with _websocket(url) as socket:
        await socket.send("0" + json.dumps({"token": forged}))
        answer = await socket.receive(lambda p: p.startswith(("0", "4")))
    if not answer.startswith("4"):
        raise SmokeError(f"a forged token was accepted: {answer[:80]!r}")
    error = json.loads(answer[1:])
    if error.get("message") != "unauthorized" or error["data"]["code"] != "signature_invalid":
        raise SmokeError(f"unexpected refusal: {answer[:200]!r}")
    print("smoke: a forged token is refused (signature_invalid)", flush=True)


async def _authenticated_events(url: str, token: str) -> None:
    async with _websocket(url) as socket:
        await socket.send("0" + json.dumps({"token": token}))
        connected = await socket.receive(lambda p: p.startswith(("0", "4")))
        if not connected.startswith("0") or "sid" not in json.loads(connected[1:]):
            raise SmokeError(f"the valid token was refused: {connected[:200]!r}")
        print("smoke: authenticated CONNECT accepted", flush=True)
        await _acked(socket, 1, "room:join", {"room": ROOM})
        await socket.send("22" + json.dumps(["chat:send", {"room": ROOM, "text": "hello"}]))
        relayed = await socket.receive(lambda p: p.startswith("2["))
        name, payload = json.loads(relayed[1:])
        if name != "chat:message" or payload.get("text") != "hello":
            raise SmokeError(f"unexpected relay: {relayed[:200]!r}")
        await _acked(socket, 2, None, None)
        print("smoke: chat:send acknowledged and relayed as chat:message", flush=True)
        await socket.send("1")  # Socket.IO DISCONNECT


async def _acked(socket: _Socket, ack: int, event: str | None, payload: Any) -> None:
    if event is not None:
        await socket.send(f"2{ack}" + json.dumps([event, payload]))
    answer = await socket.receive(lambda p: p.startswith(f"3{ack}["))
    body = json.loads(answer[len(f"3{ack}") :])
    if not (isinstance(body, list) and body and body[0].get("ok") is True):
        raise SmokeError(f"ack {ack} was not ok: {answer[:200]!r}")
    if event is not None:
        print(f"smoke: {event} acknowledged ok", flush=True)


async def _polling_opens(url: str) -> None:
    """Engine.IO long-polling: OPEN, then CLOSE (``1``) so the session ends at once."""
    import httpx

    endpoint = f"http://{url}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
        answer = await http.get(endpoint)
        if answer.status_code != 200 or not answer.text.startswith("0{"):
            raise SmokeError(f"long-polling did not open: {answer.status_code}")
        sid = json.loads(answer.text[1:])["sid"]
        closed = await http.post(f"{endpoint}&sid={sid}", content=b"1")
    if closed.status_code != 200:
        raise SmokeError(f"long-polling CLOSE answered {closed.status_code}")
    print("smoke: Engine.IO long-polling opens and closes", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for mode in ("lowest", "pinned", "newest"):
        run = commands.add_parser(mode, help=f"install ({mode} versions) and smoke-test")
        run.add_argument("--python", default=sys.executable, help="the Python to test with")
        run.add_argument("--keep", action="store_true", help="keep the throwaway directory")
        if mode == "lowest":
            run.add_argument(
                "--with", dest="overrides", action="append", default=[],
                metavar="NAME==VERSION", help="one dependency at another version",
            )  # fmt: skip
    commands.add_parser("floors", help="print pyproject's floors as pip constraints")
    inner = commands.add_parser("smoke", help="(inside the throwaway environment)")
    inner.add_argument("--config", type=Path, required=True)
    inner.add_argument("--ssoio", required=True)
    inner.add_argument("--expect", type=Path, help="constraints the install must match")
    args = parser.parse_args(argv)
    try:
        if args.command == "floors":
            print(floor_constraints(ROOT / "pyproject.toml"), end="")
        elif args.command == "smoke":
            smoke(args.config, args.ssoio, args.expect)
        else:
            drive(args.command, args.python, args.keep, getattr(args, "overrides", []))
    except (SmokeError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
