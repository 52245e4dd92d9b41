"""The JSON log format (``ssoio serve``'s default)."""

from __future__ import annotations

import json
import logging
import sys

from ssoio.serving import _JsonFormatter


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
