"""The JSON log format (``ssoio serve``'s default)."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from ssoio.serving import MAX_MESSAGE_CHARS, _JsonFormatter, _TextFormatter


def record(exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                             "Exception in ASGI application", None, exc_info)  # type: ignore[arg-type]  # fmt: skip


def test_an_exception_is_named_without_its_text_or_traceback() -> None:
    try:
        raise ValueError("token eyJhbGciOi.x.y in the message")
    except ValueError:
        line = _JsonFormatter().format(record(sys.exc_info()))
    body = json.loads(line)
    assert body["exception"] == "ValueError"
    assert body["message"] == "Exception in ASGI application"
    assert "eyJ" not in line
    assert "Traceback" not in line


def test_a_plain_record_has_no_exception_field() -> None:
    body = json.loads(_JsonFormatter().format(record()))
    assert set(body) == {"ts", "level", "logger", "message"}


def client_record(message: str, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("engineio.server", logging.ERROR, __file__, 1, message, None,
                             exc_info)  # type: ignore[arg-type]  # fmt: skip


FORGED = 'Invalid session \n{"level":"error"}\x1b[31mred\r\x00\x85'


def test_text_lines_escape_control_characters() -> None:
    """A newline in client input would forge a log line, ESC drive a terminal."""
    line = _TextFormatter().format(client_record(FORGED))
    assert "\n" not in line
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in line), repr(line)
    assert line.endswith(r'Invalid session \n{"level":"error"}\x1b[31mred\r\x00\x85')


def test_text_lines_name_an_exception_without_its_traceback() -> None:
    try:
        raise ValueError("token eyJhbGciOi.x.y in the message")
    except ValueError:
        line = _TextFormatter().format(client_record("post request handler error",
                                                     sys.exc_info()))  # fmt: skip
    assert line.endswith("post request handler error exception=ValueError")
    assert "Traceback" not in line
    assert "eyJ" not in line


@pytest.mark.parametrize("formatter", [_JsonFormatter(), _TextFormatter()],
                         ids=["json", "text"])  # fmt: skip
def test_a_long_message_is_cut(formatter: logging.Formatter) -> None:
    """python-engineio quotes a session id of any length."""
    line = formatter.format(client_record("Invalid session " + "A" * 100_000))
    assert len(line) < MAX_MESSAGE_CHARS + 200
    assert "(100016 chars)" in line


def test_json_lines_escape_control_characters() -> None:
    line = _JsonFormatter().format(client_record(FORGED))
    assert "\n" not in line
    assert "\x1b" not in line
    assert json.loads(line)["message"] == FORGED
