"""The audit trail: one structured JSON line per security-relevant event.

Event names are stable (``auth.connect.accepted``, ``event.denied``...); fields are plain
values. Callers never pass a token, cookie, client secret or session id: subjects,
issuer names, codes and fingerprints' absence are what an auditor needs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["audit"]

log = logging.getLogger("ssoio.audit")


def audit(event: str, /, **fields: Any) -> None:
    """Write one audit line: ``{"event": ..., **fields}``."""
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({"event": event, **fields}, default=str, sort_keys=True))
