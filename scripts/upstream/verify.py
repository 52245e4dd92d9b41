"""Run every upstream reproduction against the installed packages, then against a patched copy.

For each report in docs/upstream/: the reproduction must exit 1 (defect present) with the
installed packages, and 0 with the report's patch applied to a copy of the packages it
touches (put first on PYTHONPATH). Needs the ``patch`` command. Takes about two minutes.

    python scripts/upstream/verify.py [NAME ...]   # NAME: a report's file name, no .md
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATCHES = HERE.parent.parent / "docs" / "upstream" / "patches"

# report -> (reproduction script, patches)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "python-engineio-remote-addr": ("engineio_remote_addr.py", ()),
    "python-engineio-ping-timeout-close-dropped": ("engineio_ping_timeout_close.py", ()),
    "python-engineio-last-packet-kept": ("engineio_last_packet_kept.py", ()),
    "python-engineio-client-close-websocket-open": ("engineio_client_close_ws.py", ()),
    "python-engineio-jsonp-without-origin": ("engineio_jsonp.py", ()),
    "python-engineio-post-payload-errors": ("engineio_post_payload_errors.py", ()),
    "python-engineio-logger-false-streamhandler": (
        "engineio_logger_handler.py",
        ("python-socketio-logger-false-streamhandler",),
    ),
    "python-engineio-protocol-conformance": ("engineio_conformance.py", ()),
    "python-socketio-reserved-event-names": ("socketio_reserved_events.py", ()),
    "python-socketio-binary-attachments-unbounded": ("socketio_binary_attachments.py", ()),
    "python-socketio-connect-handler-exception": ("socketio_connect_handler_error.py", ()),
    "uvicorn-httptools-request-head-limits": ("uvicorn_httptools_request_head.py", ()),
    "uvicorn-ws-handshake-refusal-unanswered": ("uvicorn_ws_handshake_unanswered.py", ()),
    "uvicorn-ws-handshake-objects-kept": ("uvicorn_ws_request_kept.py", ()),
    "websockets-max-line-length-parameter": ("websockets_max_line_length.py", ()),
}


def run(script: str, pythonpath: str | None) -> int:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(HERE / script)],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    return done.returncode


def patched_copy(diffs: list[Path], into: Path) -> None:
    """Copy the packages the diffs touch (from this interpreter's site-packages), patch them."""
    for diff in diffs:
        for line in diff.read_text().splitlines():
            if line.startswith("+++ b/"):
                package = line[len("+++ b/") :].split("/", 1)[0]
                if not (into / package).exists():
                    spec = importlib.util.find_spec(package)
                    if spec is None or spec.origin is None:
                        raise SystemExit(f"{package} is not installed")
                    shutil.copytree(Path(spec.origin).parent, into / package)
    for diff in diffs:
        with diff.open() as patch_input:
            subprocess.run(
                ["patch", "-p1", "--quiet", "-d", str(into)],
                stdin=patch_input,
                check=True,
            )


def main(names: list[str]) -> int:
    failures = 0
    for name, (script, extra) in CASES.items():
        if names and name not in names:
            continue
        stock = run(script, None)
        with tempfile.TemporaryDirectory() as tmp:
            diffs = [PATCHES / f"{patch}.diff" for patch in (name, *extra)]
            patched_copy(diffs, Path(tmp))
            fixed = run(script, tmp)
        ok = stock == 1 and fixed == 0
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: installed exit {stock} (1 = reproduced), "
              f"patched exit {fixed} (0 = fixed)")  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
