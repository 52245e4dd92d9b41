"""LemonLDAP::NG 2.16 (Debian's package) as a real OpenID Provider for the interop tests.

`LemonLdapProvider.start()` writes a complete LemonLDAP::NG configuration into a temporary
directory (its own lemonldap-ng.ini, named by LLNG_DEFAULTCONFFILE, and a File configuration
backend holding lmConf-1.json), runs Debian's `llng-fastcgi-server` and an `nginx` in front of
it (own nginx.conf, `daemon off`, every pid, log, socket and temporary path in that directory),
waits for the discovery document and, on `stop()`, terminates both process groups (SIGTERM,
then SIGKILL, bounded) and removes the directory. `running_lemonldap()` is the same as an
async context manager. `scripts/ensure-system-deps` installs the packages; the system services
they ship are not used (nor started: see that script).

What it configures (checked against the installed 2.16 sources under Lemonldap/NG/Portal):

- the Demo authentication and user backend (`USERS`: dwho, rtyler, msmith; password = login;
  groups from UserDB/Demo.pm's %demoGroups, roles from a per-RP macro);
- the issuer = the portal URL WITH its trailing slash, as LemonLDAP::NG writes it by default;
  an RSA key generated here signs ID and access tokens (RS256, `kid` published in the JWKS);
- one confidential relying party for ssoio (`RP_NAME`): the caller's client id, secret,
  redirect URIs and post-logout redirect URIs; PKCE required (ssoio always sends S256); no
  consent page; refresh tokens (online ones, tied to the SSO session: they stop working when
  the user logs out at the portal; offline access is left off); access tokens as JWTs
  (`oidcRPMetaDataOptionsAccessTokenJWT`) with the user's claims copied in
  (`...AccessTokenClaims`), lifetime `access_token_ttl`;
- OpenID Connect Front-Channel Logout 1.0: the RP's logout URL, type "front", "session
  required" on, so the portal's logout page loads `URL?iss=ISSUER&sid=SID` in an iframe.

What LemonLDAP::NG 2.16 puts in its tokens (read in Lib/OpenIDConnect.pm and
Issuer/OpenIDConnect.pm, seen on the wire by test_lemonldap_provider.py):

- access token: JOSE header `typ` "JWT" (not "at+jwt"), `kid`; claims iss, sub, aud (an ARRAY:
  the client id, then `additional_audiences`, i.e. oidcRPMetaDataOptionsAdditionalAudiences;
  ID tokens get the same aud), client_id, iat, exp, jti,
  scope (the granted scopes, unknown ones included), and with AccessTokenClaims the released
  user claims (name, preferred_username, email, groups, roles). No `sid`, no `azp`.
- ID token: iss, sub, aud, exp, iat, auth_time, acr, azp, nonce, at_hash. No `sid` either:
  2.16 never writes one (`_generateIDToken`).
- front-channel logout: the `sid` query parameter is NOT a session id but the user's
  subject for this RP (`getUserIDForRP`, i.e. the `sub` of its tokens). A relying party that
  requires `sid` to equal its ID token's `sid` can never match LemonLDAP::NG 2.16.
- claims are released per scope: "profile" and "email" as OIDC Core says, and the extra scope
  `GROUPS_SCOPE` ("groups") releases `groups` and `roles` (arrays, always).

Host name. ssoio runs at http://127.0.0.1:PORT; the portal must be another *site* so that the
front-channel iframe is a cross-site frame, as in production (ssoio's SameSite=Lax cookie is
then not sent with it). It is served at http://localhost:PORT2/: every browser and HTTP
client resolves `localhost` to loopback without touching /etc/hosts, yet it is a different
host, hence a different site, from 127.0.0.1. Chromium may connect to ::1 or 127.0.0.1 for
it and Python to whatever getaddrinfo returns, so nginx listens on both (on 127.0.0.1 only
where the machine has no IPv6 loopback). LemonLDAP::NG requires a cookie `domain` and
writes it with a leading dot: `localhost` gives `Domain=.localhost`, which Chromium keeps as
a cookie for the host localhost (seen in the cookie jar: domain "localhost", SameSite=Lax).

As root (this machine's CI), both daemons run as www-data (`llng-fastcgi-server` refuses to
run as root); the temporary directory is handed to that user.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import errno
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .provider import missing

NGINX: Final = Path("/usr/sbin/nginx")
FASTCGI_SERVER: Final = Path("/usr/sbin/llng-fastcgi-server")
LLNG_CLI: Final = Path("/usr/share/lemonldap-ng/bin/lemonldap-ng-cli")
LLNG_SHARE: Final = Path("/usr/share/lemonldap-ng")
NGINX_FASTCGI_PARAMS: Final = Path("/etc/nginx/fastcgi_params")
NGINX_MIME_TYPES: Final = Path("/etc/nginx/mime.types")

RP_NAME: Final = "ssoio"
GROUPS_SCOPE: Final = "groups"
DEFAULT_CLIENT_ID: Final = "ssoio-web"
DEFAULT_CLIENT_SECRET: Final = "ssoio-web-secret"
DEFAULT_ACCESS_TOKEN_TTL_S: Final = 600
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 5.0
HTTP_TIMEOUT_S: Final = 10.0
POLL_INTERVAL_S: Final = 0.1
PORT_ATTEMPTS: Final = 20
FASTCGI_PROCESSES: Final = 2
SERVICE_USER: Final = "www-data"
LOG_KEEP_BYTES: Final = 16 * 1024
PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


class LemonLdapError(RuntimeError):
    """LemonLDAP::NG could not be configured or started, or answered unexpectedly."""


@dataclass(frozen=True)
class DemoUser:
    """A user of LemonLDAP::NG's Demo backend and the claims its tokens carry for ssoio."""

    login: str
    name: str
    email: str
    groups: tuple[str, ...]
    roles: tuple[str, ...]

    @property
    def password(self) -> str:
        return self.login  # the Demo backend accepts password = login

    @property
    def sub(self) -> str:
        return self.login  # whatToTrace = uid


# UserDB/Demo.pm's %demoAccounts and %demoGroups (2.16); roles come from ROLES_MACRO.
USERS: Final = {
    "dwho": DemoUser("dwho", "Doctor Who", "dwho@badwolf.org", ("timelords", "users"),
                     ("admin", "staff")),
    "rtyler": DemoUser("rtyler", "Rose Tyler", "rtyler@badwolf.org", ("earthlings", "users"),
                       ("staff",)),
    "msmith": DemoUser("msmith", "Mickey Smith", "msmith@badwolf.org", ("earthlings", "users"),
                       ("staff",)),
}  # fmt: skip

# A per-RP macro (oidcRPMetaDataMacros): evaluated when claims are built, after the Demo
# backend has set `groups` ("a; b", multiValuesSeparator "; "), so it may read them.
ROLES_MACRO: Final = '$groups =~ /(?:^|; )timelords(?:;|$)/ ? "admin; staff" : "staff"'


def require_path(path: Path, what: str) -> Path:
    """An installed file; a missing one skips the test locally and fails it on CI."""
    if not path.exists():
        missing(
            f"{what} is not installed ({path} is missing; run scripts/ensure-system-deps, "
            "needed by the LemonLDAP::NG interop tests)"
        )
    return path


def require_lemonldap() -> None:
    """LemonLDAP::NG, its FastCGI server and nginx, or skip (fail on CI)."""
    require_path(LLNG_CLI, "LemonLDAP::NG (Debian package lemonldap-ng)")
    require_path(FASTCGI_SERVER, "llng-fastcgi-server (Debian package lemonldap-ng-fastcgi-server)")
    require_path(NGINX, "nginx (Debian package nginx-light)")


# --------------------------------------------------------------------------- configuration


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signing_key() -> tuple[str, str, str]:
    """(private PEM, public PEM, kid): a fresh RSA key; the kid is its RFC 7638 thumbprint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # what Crypt::OpenSSL::RSA reads
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    numbers = key.public_key().public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return private_pem, public_pem, kid


@dataclass(frozen=True)
class RelyingParty:
    """What the caller decides about ssoio's registration at the portal."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    frontchannel_logout_uri: str | None
    access_token_ttl_s: int
    additional_audiences: tuple[str, ...] = ()


def lemonldap_conf(portal: str, workdir: Path, rp: RelyingParty) -> dict[str, Any]:
    """lmConf-1.json: every key the tests rely on written out (the rest: 2.16's defaults)."""
    private_pem, public_pem, kid = _signing_key()
    sessions = workdir / "sessions"
    psessions = workdir / "psessions"
    rp_options: dict[str, Any] = {
        "oidcRPMetaDataOptionsClientID": rp.client_id,
        "oidcRPMetaDataOptionsClientSecret": rp.client_secret,
        "oidcRPMetaDataOptionsDisplayName": "ssoio",
        "oidcRPMetaDataOptionsPublic": 0,
        "oidcRPMetaDataOptionsRedirectUris": " ".join(rp.redirect_uris),
        "oidcRPMetaDataOptionsPostLogoutRedirectUris": " ".join(rp.post_logout_redirect_uris),
        "oidcRPMetaDataOptionsRequirePKCE": 1,
        "oidcRPMetaDataOptionsBypassConsent": 1,
        "oidcRPMetaDataOptionsIDTokenSignAlg": "RS256",
        "oidcRPMetaDataOptionsAccessTokenSignAlg": "RS256",
        "oidcRPMetaDataOptionsAccessTokenJWT": 1,
        "oidcRPMetaDataOptionsAccessTokenClaims": 1,
        "oidcRPMetaDataOptionsAccessTokenExpiration": rp.access_token_ttl_s,
        # aud of ID and access tokens: [client id, *these] (Lib/OpenIDConnect.pm getAudiences)
        "oidcRPMetaDataOptionsAdditionalAudiences": " ".join(rp.additional_audiences),
        "oidcRPMetaDataOptionsRefreshToken": 1,
        "oidcRPMetaDataOptionsAllowOffline": 0,
        "oidcRPMetaDataOptionsUserIDAttr": "uid",
        "oidcRPMetaDataOptionsLogoutType": "front",
        "oidcRPMetaDataOptionsLogoutSessionRequired": 1,
        "oidcRPMetaDataOptionsLogoutBypassConfirm": 1,
    }
    if rp.frontchannel_logout_uri:
        rp_options["oidcRPMetaDataOptionsLogoutUrl"] = rp.frontchannel_logout_uri
    return {
        "cfgNum": 1,
        "cfgAuthor": "ssoio interop tests",
        "cfgDate": str(int(time.time())),
        "cfgVersion": "2.16.1",
        "portal": portal,
        "domain": urlsplit(portal).hostname,
        "cookieName": "lemonldap",
        "securedCookie": 0,
        "httpOnly": 1,
        "timeout": 72000,
        "authentication": "Demo",
        "userDB": "Same",
        "passwordDB": "Demo",
        "registerDB": "Null",
        "demoExportedVars": {"cn": "cn", "mail": "mail", "uid": "uid"},
        "exportedVars": {},
        "whatToTrace": "uid",
        "macros": {},
        "groups": {},
        "globalStorage": "Apache::Session::File",
        "globalStorageOptions": {
            "Directory": str(sessions),
            "LockDirectory": str(sessions / "lock"),
            "generateModule": "Lemonldap::NG::Common::Apache::Session::Generate::SHA256",
        },
        "persistentStorage": "Apache::Session::File",
        "persistentStorageOptions": {
            "Directory": str(psessions),
            "LockDirectory": str(psessions / "lock"),
        },
        "localSessionStorage": "Cache::FileCache",
        "localSessionStorageOptions": {
            "cache_root": str(workdir / "cache"),
            "cache_depth": 3,
            "default_expires_in": 600,
            "directory_umask": "007",
            "namespace": "lemonldap-ng-sessions",
        },
        "captcha": NO_CAPTCHA_MODULE,
        "captcha_login_enabled": 0,
        "captcha_mail_enabled": 0,
        "captcha_register_enabled": 0,
        "notification": 0,
        "loginHistoryEnabled": 0,
        "portalSkin": "bootstrap",
        "portalDisplayLogout": 1,
        # No 30-second countdown on information pages (the logout page that follows an
        # RP-initiated logout): tests click "Continue" (`continue_steps`) when they want to.
        "activeTimer": 0,
        "locationRules": {},
        "exportedHeaders": {},
        "applicationList": {},
        # OpenID Provider
        "issuerDBOpenIDConnectActivation": 1,
        "oidcServiceMetaDataIssuer": portal,
        "oidcServicePrivateKeySig": private_pem,
        "oidcServicePublicKeySig": public_pem,
        "oidcServiceKeyIdSig": kid,
        "oidcServiceAllowAuthorizationCodeFlow": 1,
        "oidcServiceAllowImplicitFlow": 0,
        "oidcServiceAllowHybridFlow": 0,
        "oidcServiceIgnoreScopeForClaims": 0,
        "oidcServiceAllowOnlyDeclaredScopes": 0,
        "oidcRPMetaDataOptions": {RP_NAME: rp_options},
        "oidcRPMetaDataExportedVars": {
            RP_NAME: {
                "name": "cn",
                "preferred_username": "uid",
                "email": "mail",
                "groups": "groups;string;always",
                "roles": "roles;string;always",
            }
        },
        "oidcRPMetaDataOptionsExtraClaims": {RP_NAME: {GROUPS_SCOPE: "groups roles"}},
        "oidcRPMetaDataMacros": {RP_NAME: {"roles": ROLES_MACRO}},
        "oidcRPMetaDataScopeRules": {RP_NAME: {}},
    }


# The portal loads its captcha module at start even when no form uses a captcha
# (Portal/Main/Init.pm: `captcha` || ::Captcha::SecurityImage), and Debian's default one needs
# GD::SecurityImage with ImageMagick, which the package only recommends. Captchas stay off
# here, so `captcha` names this do-nothing module (the interface of Portal/Captcha.pod).
NO_CAPTCHA_MODULE: Final = "SsoioTests::NoCaptcha"
NO_CAPTCHA_SOURCE: Final = """\
package SsoioTests::NoCaptcha;
use strict;
use Mouse;
extends 'Lemonldap::NG::Portal::Main::Plugin';
sub init { return 1; }
sub init_captcha { return; }
sub check_captcha { return 0; }
1;
"""


def lemonldap_ini(workdir: Path, log_level: str) -> str:
    """The lemonldap-ng.ini LLNG_DEFAULTCONFFILE points at: File backend in ``workdir``."""
    return f"""\
[all]
logLevel = {log_level}
checkTime = 1

[configuration]
type = File
dirName = {workdir / "conf"}
prettyPrint = 1

[portal]
staticPrefix = /static
templateDir = {LLNG_SHARE / "portal" / "templates"}
languages = en

[handler]
status = 0
"""


def nginx_conf(workdir: Path, port: int, listen_v6: bool) -> str:
    """Debian's portal-nginx.conf, adapted: own paths, loopback listeners, no daemon."""
    listen = f"listen 127.0.0.1:{port};" + (f" listen [::1]:{port};" if listen_v6 else "")
    htdocs = LLNG_SHARE / "portal" / "htdocs"
    temp = workdir / "nginx"
    return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
  include {NGINX_MIME_TYPES};
  access_log {workdir / "nginx-access.log"};
  client_body_temp_path {temp / "body"};
  fastcgi_temp_path {temp / "fastcgi"};
  proxy_temp_path {temp / "proxy"};
  uwsgi_temp_path {temp / "uwsgi"};
  scgi_temp_path {temp / "scgi"};
  upstream llng_portal_upstream {{ server unix:{workdir / "fastcgi.sock"}; }}
  server {{
    {listen}
    server_name localhost;
    root {htdocs}/;
    if ($uri !~ ^/((static|javascript|favicon).*|.*\\.psgi)) {{
      rewrite ^/(.*)$ /index.psgi/$1 break;
    }}
    location ~ ^(?<sc>/.*\\.psgi)(?:$|/) {{
      include {NGINX_FASTCGI_PARAMS};
      fastcgi_pass llng_portal_upstream;
      fastcgi_param HTTP_HOST $http_host;
      fastcgi_param LLTYPE psgi;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_split_path_info ^(.*\\.psgi)(/.*)$;
      fastcgi_param PATH_INFO $fastcgi_path_info;
    }}
    index index.psgi;
    location / {{ try_files $uri $uri/ =404; }}
    location /static/ {{ alias {htdocs}/static/; }}
    location /javascript/ {{ alias /usr/share/javascript/; }}
  }}
}}
"""


# --------------------------------------------------------------------------- processes


def _loopback_port() -> tuple[int, bool]:
    """A port free on 127.0.0.1 and, where the machine has an IPv6 loopback, on ::1 too
    (``localhost`` may resolve to either); returns (port, listen on ::1)."""
    for _ in range(PORT_ATTEMPTS):
        with socket.socket() as v4:
            v4.bind(("127.0.0.1", 0))
            port = int(v4.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET6) as v6:
                    v6.bind(("::1", port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:  # try another port
                    continue
                return port, False  # no IPv6 loopback here
            return port, True
    raise LemonLdapError(f"no port free on both loopbacks after {PORT_ATTEMPTS} tries")


def _service_user() -> pwd.struct_passwd | None:
    """The user the daemons run as when we are root (llng-fastcgi-server refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return pwd.getpwnam("nobody")


def _hand_over(root: Path, user: pwd.struct_passwd) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


@dataclass
class _Daemon:
    """One child started in its own process group (FCGI::ProcManager forks workers)."""

    name: str
    process: asyncio.subprocess.Process
    head: bytearray
    tail: bytearray
    reader: asyncio.Task[None]

    @property
    def pgid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        """SIGTERM to the group, then SIGKILL after a bound; then stop reading its pipes."""
        if self.process.returncode is None:
            _signal_group(self.pgid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                _signal_group(self.pgid, signal.SIGKILL)
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        # Workers may outlive their manager for a moment: none may stay behind.
        await _reap_group(self.pgid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.reader), 1.0)
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader

    @property
    def text(self) -> str:
        """The first and the last lines it printed (the first error is usually the cause)."""
        head = bytes(self.head).decode("utf-8", "replace")
        tail = bytes(self.tail).decode("utf-8", "replace")
        return head if tail == head else f"{head}\n[...]\n{tail}"


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes of a process group (from /proc; zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


async def _reap_group(pgid: int) -> None:
    """Wait (bounded) until no process of the group is left; SIGKILL the stragglers."""
    for last in (False, True):
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while group_members(pgid):
            if time.monotonic() > deadline:
                if last:
                    raise LemonLdapError(f"processes {group_members(pgid)} survived SIGKILL")
                _signal_group(pgid, signal.SIGKILL)
                break
            await asyncio.sleep(POLL_INTERVAL_S)
        else:
            return


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies (prctl(2)
    PR_SET_PDEATHSIG), so a killed test run leaves no portal behind. Popen changes the user
    before it calls this, so the setting survives (a later credential change would clear
    it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _spawn(
    name: str, argv: Sequence[str], env: dict[str, str], user: pwd.struct_passwd | None
) -> _Daemon:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        user=user.pw_uid if user else None, group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
    )  # fmt: skip
    head, tail = bytearray(), bytearray()
    reader = asyncio.create_task(_drain_ends(process.stdout, head, tail))
    return _Daemon(name, process, head, tail, reader)


async def _drain_ends(
    stream: asyncio.StreamReader | None, head: bytearray, tail: bytearray
) -> None:
    """Read a pipe to its end, keeping its first and last LOG_KEEP_BYTES."""
    if stream is None:
        return
    while chunk := await stream.read(8192):
        if len(head) < LOG_KEEP_BYTES:
            head.extend(chunk[: LOG_KEEP_BYTES - len(head)])
        tail.extend(chunk)
        if len(tail) > LOG_KEEP_BYTES:
            del tail[: len(tail) - LOG_KEEP_BYTES]


# --------------------------------------------------------------------------- the provider


@dataclass
class LemonLdapProvider:
    """A running LemonLDAP::NG portal and OpenID Provider; build it with `start()`."""

    portal: str
    port: int
    workdir: Path
    rp: RelyingParty
    users: dict[str, DemoUser]
    _daemons: list[_Daemon] = field(default_factory=list, repr=False)
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        """The portal URL with its trailing slash, exactly as tokens carry it in `iss`."""
        return self.portal

    @property
    def origin(self) -> str:
        """The portal's origin, the one that frames front-channel logout URLs (what a relying
        party allows in `Content-Security-Policy: frame-ancestors`)."""
        return self.portal.rstrip("/")

    @property
    def client_id(self) -> str:
        return self.rp.client_id

    @property
    def client_secret(self) -> str:
        return self.rp.client_secret

    @property
    def access_token_audience(self) -> str:
        """What LemonLDAP::NG writes first in an access token's `aud` array: the client id
        (then `additional_audiences`, in ID tokens too)."""
        return self.rp.client_id

    @property
    def scopes(self) -> list[str]:
        """Scopes a relying party asks for to get every claim the users have."""
        return ["openid", "profile", "email", GROUPS_SCOPE]

    @property
    def pgids(self) -> list[int]:
        """Process groups of nginx and the FastCGI server (for "nothing left" checks)."""
        return [daemon.pgid for daemon in self._daemons]

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def start(
        cls,
        *,
        redirect_uris: Sequence[str],
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        post_logout_redirect_uris: Sequence[str] = (),
        frontchannel_logout_uri: str | None = None,
        access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL_S,
        additional_audiences: Sequence[str] = (),
        log_level: str = "notice",
    ) -> LemonLdapProvider:
        """Configure and start the portal; returns once discovery answers (at most 30 s)."""
        require_lemonldap()
        rp = RelyingParty(
            client_id, client_secret, tuple(redirect_uris), tuple(post_logout_redirect_uris),
            frontchannel_logout_uri, access_token_ttl, tuple(additional_audiences),
        )  # fmt: skip
        port, listen_v6 = _loopback_port()
        portal = f"http://localhost:{port}/"
        workdir = Path(tempfile.mkdtemp(prefix="ssoio-llng-"))
        provider = cls(portal, port, workdir, rp, dict(USERS))
        try:
            env = provider._write_files(listen_v6, log_level)
            user = _service_user()
            if user is not None:
                _hand_over(workdir, user)
            fastcgi = [
                str(FASTCGI_SERVER), "--foreground", "--engine", "FCGI",
                "--proc", str(FASTCGI_PROCESSES), "--socket", str(workdir / "fastcgi.sock"),
                "--pid", str(workdir / "fastcgi.pid"),
            ]  # fmt: skip
            provider._daemons.append(await _spawn("llng-fastcgi-server", fastcgi, env, user))
            nginx = [
                str(NGINX), "-p", str(workdir), "-e", "stderr", "-c", str(workdir / "nginx.conf")
            ]  # fmt: skip
            provider._daemons.append(await _spawn("nginx", nginx, env, user))
            await asyncio.wait_for(provider._wait_ready(), START_TIMEOUT_S)
        except BaseException as exc:
            # Never leave a half-started portal behind, whatever interrupted the start.
            logs = provider.logs
            await provider.stop()
            if not isinstance(exc, Exception):
                raise
            what = (
                f"no discovery document within {START_TIMEOUT_S:.0f} s"
                if isinstance(exc, TimeoutError)
                else f"start failed: {exc}"
            )
            raise LemonLdapError(f"LemonLDAP::NG at {portal}: {what}; logs:\n{logs}") from exc
        return provider

    def _write_files(self, listen_v6: bool, log_level: str) -> dict[str, str]:
        workdir = self.workdir
        for sub in ("conf", "sessions/lock", "psessions/lock", "cache", "nginx", "perl"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        (workdir / "perl" / "SsoioTests").mkdir()
        (workdir / "perl" / "SsoioTests" / "NoCaptcha.pm").write_text(NO_CAPTCHA_SOURCE)
        conf = lemonldap_conf(self.portal, workdir, self.rp)
        (workdir / "conf" / "lmConf-1.json").write_text(json.dumps(conf, indent=1))
        ini = workdir / "lemonldap-ng.ini"
        ini.write_text(lemonldap_ini(workdir, log_level))
        (workdir / "nginx.conf").write_text(nginx_conf(workdir, self.port, listen_v6))
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(workdir),
            "LLNG_DEFAULTCONFFILE": str(ini),
            "PERL5LIB": str(workdir / "perl"),
            # Logs on stderr (captured in `logs`), not syslog.
            "LLNG_DEFAULTLOGGER": "Lemonldap::NG::Common::Logger::Std",
        }

    async def _wait_ready(self) -> None:
        url = f"{self.portal}.well-known/openid-configuration"
        async with self._client() as client:
            while True:
                for daemon in self._daemons:
                    if daemon.process.returncode is not None:
                        raise LemonLdapError(
                            f"{daemon.name} exited with {daemon.process.returncode}"
                        )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    response = await client.get(url)
                    # 500: the portal's initialisation failed (it stays so); 502 is nginx
                    # before the FastCGI socket exists.
                    if response.status_code == httpx.codes.INTERNAL_SERVER_ERROR:
                        raise LemonLdapError("the portal failed to initialise (500)")
                    if response.status_code == httpx.codes.OK:
                        document = response.json()
                        if document.get("issuer") == self.issuer:
                            self._metadata = document
                            return
                await asyncio.sleep(POLL_INTERVAL_S)

    async def stop(self) -> None:
        """Stop nginx, then the FastCGI server (groups, bounded); remove the directory."""
        for daemon in reversed(self._daemons):
            await daemon.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def logs(self) -> str:
        """What nginx and LemonLDAP::NG printed (first and last 16 KiB each), for messages."""
        return "\n".join(f"--- {d.name}\n{d.text}" for d in self._daemons)

    # ------------------------------------------------------------------ HTTP

    def _client(self, **kwargs: Any) -> httpx.AsyncClient:
        # trust_env=False: never route loopback traffic through a proxy from the environment.
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, trust_env=False, **kwargs)

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched at start)."""
        if self._metadata is None:
            async with self._client() as client:
                response = await client.get(f"{self.portal}.well-known/openid-configuration")
                response.raise_for_status()
                self._metadata = response.json()
        return self._metadata

    async def jwks(self) -> dict[str, Any]:
        async with self._client() as client:
            response = await client.get((await self.metadata())["jwks_uri"])
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    # ------------------------------------------------------------------ browser steps

    def login_steps(
        self, context: str, user: str, *, password: str | None = None
    ) -> list[dict[str, Any]]:
        """Browser steps (tests/interop/browser.py) that fill the portal's login form; run
        them once the page shows it (after a `goto` to a relying party's login)."""
        return [
            {"op": "wait_for_selector", "context": context, "selector": "#userfield"},
            {"op": "fill", "context": context, "selector": "#userfield", "value": user},
            {
                "op": "fill",
                "context": context,
                "selector": "#passwordfield",
                "value": password if password is not None else user,
            },
            {"op": "click", "context": context, "selector": "button[type=submit].btn-success"},
        ]

    def logout_steps(self, context: str, *, timeout_ms: int = 10_000) -> list[dict[str, Any]]:
        """Browser steps that log out at the portal (`GET PORTAL?logout=1`) and wait until
        every front-channel iframe of its logout page has loaded."""
        return [
            {"op": "goto", "context": context, "url": f"{self.portal}?logout=1"},
            {
                "op": "wait_for_function",
                "context": context,
                "expression": FRAMES_LOADED_JS,
                "timeout_ms": timeout_ms,
            },
        ]

    def continue_steps(self, context: str, *, timeout_ms: int = 10_000) -> list[dict[str, Any]]:
        """Browser steps for the page the portal shows after an RP-initiated logout (its end
        session endpoint): wait until the front-channel iframes have loaded, then press
        "Continue", which goes to the relying party's post_logout_redirect_uri with its
        `state` (a GET form)."""
        return [
            {
                "op": "wait_for_function",
                "context": context,
                "expression": FRAMES_LOADED_JS,
                "timeout_ms": timeout_ms,
            },
            {"op": "click", "context": context, "selector": "#form button.positive"},
        ]


# True once the logout page's iframes have all finished loading (a cross-origin frame's
# document cannot be read, but its `load` event still fires on the element; the page's own
# `load` waits for every iframe, so document.readyState "complete" covers frames present in
# the served HTML, which is where LemonLDAP::NG writes them).
FRAMES_LOADED_JS: Final = (
    "document.readyState === 'complete' && document.querySelectorAll('iframe').length > 0"
)


@asynccontextmanager
async def running_lemonldap(**kwargs: Any) -> AsyncIterator[LemonLdapProvider]:
    """`LemonLdapProvider.start(**kwargs)` for the block, stopped whatever happens."""
    provider = await LemonLdapProvider.start(**kwargs)
    try:
        yield provider
    finally:
        await provider.stop()
