"""The audit trail: one structured record per security-relevant event.

Event names are stable (``auth.connect.accepted``, ``event.denied``, ``key.rotated``...)
and fields are plain values. Callers never pass a token, cookie, client secret or session
id: issuers, subjects, codes, rooms and rules are what an auditor needs.

An ``Observer`` is what components call: it writes the audit record (logger
``ssoio.audit``, one JSON object per line with the JSON log format) and feeds the same
event to the metrics, so the log and ``/metrics`` can never disagree.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

__all__ = ["EventSink", "Observer", "audit"]

log = logging.getLogger("ssoio.audit")


def audit(event: str, /, **fields: Any) -> None:
    """Write one audit record: ``{"event": ..., **fields}``."""
    if log.isEnabledFor(logging.INFO):
        record = {"event": event, **fields}
        log.info(json.dumps(record, default=str, sort_keys=True), extra={"audit": record})


class EventSink(Protocol):
    def observe(self, event: str, fields: dict[str, Any]) -> None: ...


class Observer:
    """Audit log plus metrics for one ssoio node."""

    def __init__(self, sink: EventSink | None = None) -> None:
        self.sink = sink

    def __call__(self, event: str, /, **fields: Any) -> None:
        audit(event, **fields)
        if self.sink is not None:
            self.sink.observe(event, fields)
