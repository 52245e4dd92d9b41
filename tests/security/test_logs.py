"""What client input can do to the log of ``ssoio serve``: nothing but escaped text in
ssoio's own format, one line per event, no stack traces.

python-engineio answered a long-polling POST of more than 16 packets 200 and logged a
12-line stack trace each time; it wrote its messages through a StreamHandler of its own
(raw text next to ssoio's JSON lines), and a session id in the query string such as
``%0A{...}`` forged a JSON log line, ``%1B[...`` drove the terminal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from tests.security.harness import EXAMPLE
from tests.security.served import served_node

# A forged log line and terminal escapes, percent-encoded as a client puts them in a URL
FORGED = "%0A%7B%22level%22%3A%22error%22%2C%22logger%22%3A%22forged%22%7D%1B%5B31mred%1B%5B0m"
TOO_MANY = 17  # python-engineio's Payload.max_decode_packets + 1
ROUNDS = 20
# ssoio's text format: "2026-01-01 12:00:00,000 LEVEL logger message"
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ ")
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t\n... unescaped


async def open_session(http: httpx.AsyncClient, url: str) -> str:
    response = await http.get(f"{url}/socket.io/?EIO=4&transport=polling")
    assert response.status_code == 200, response.text
    return str(json.loads(response.text[1:])["sid"])


async def attack(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The requests of issue #14 item 6; what they were answered."""
    answers: dict[str, Any] = {"too_many": [], "forged": []}
    for _ in range(ROUNDS):
        sid = await open_session(http, url)
        body = "\x1e".join(["6"] * TOO_MANY).encode()
        response = await http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                                   content=body)  # fmt: skip
        answers["too_many"].append((response.status_code, response.text))
    for path in ("/socket.io/", "/socket.io"):
        for method in ("GET", "POST"):
            response = await http.request(
                method, f"{url}{path}?EIO=4&transport=polling&sid={FORGED}", content=b"1"
            )
            answers["forged"].append(response.status_code)
    ws_url = url.replace("http://", "ws://", 1)
    try:
        ws = await connect(f"{ws_url}/socket.io/?EIO=4&transport=websocket&sid={FORGED}",
                           proxy=None, open_timeout=3)  # fmt: skip
        await ws.close()
        answers["forged"].append(101)
    except InvalidHandshake:
        answers["forged"].append(400)
    return answers


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_client_input_reaches_the_log_escaped_and_on_one_line(
    tmp_path: Path, log_format: str
) -> None:
    config = EXAMPLE.read_text().replace('format = "json"', f'format = "{log_format}"', 1)
    async with served_node(config, tmp_path) as node, httpx.AsyncClient(timeout=5) as http:
        answers = await attack(http, node.url)
    log = node.stderr.decode("utf-8", "replace")
    lines = log.splitlines()
    for status, text in answers["too_many"]:
        assert status == 400, text[:300]
        assert json.loads(text)["error"]["code"] == "invalid_payload"
    assert all(400 <= status < 500 for status in answers["forged"]), answers["forged"]
    assert "Traceback" not in log, log[log.find("Traceback") - 300 :][:2000]
    assert not RAW_CONTROL.search(log), "a raw control character reached the log"
    if log_format == "json":
        parsed = [json.loads(line) for line in lines]  # every line is ssoio's JSON
        assert all({"ts", "level", "logger"} <= set(entry) for entry in parsed)
        assert not [entry for entry in parsed if entry["logger"] == "forged"]
    else:
        strays = [line for line in lines if not TEXT_LINE.match(line)]
        assert not strays, strays[:5]
    refused = [line for line in lines if "engineio.payload.too_many_packets" in line]
    assert len(refused) == ROUNDS, "one line per refused payload"
    # bounded: start-up, key-fetch failures, one line per refused request; python-engineio
    # wrote 12 lines per oversized payload alone
    assert len(lines) <= 40 + 2 * (ROUNDS + 5), len(lines)
