"""``login.session_check_s``: re-validate, with the provider, the browser sessions whose
sockets live on this node.

For providers without any logout channel reaching ssoio (no back- or front-channel
logout), a logout at the provider is otherwise seen only at the session's next refresh,
when its access token nears expiry. Checking every ``session_check_s`` bounds that delay,
at the price of one token request per live session per period at the provider.
"""

from __future__ import annotations

import asyncio
import logging

from ssoio.errors import SsoioError
from ssoio.web.auth import BrowserLogin

__all__ = ["check_sessions"]

log = logging.getLogger(__name__)


async def check_sessions(login: BrowserLogin, period_s: float) -> None:
    """Run until cancelled: every ``period_s``, each live session once."""
    while True:
        await asyncio.sleep(period_s)
        live = {c.web_session for c in login.gateway.connections if c.web_session}
        for session_id in live:
            try:
                await login.revalidate(session_id)
            except SsoioError as error:  # the provider or Redis down: the next round
                log.warning("login.session_check.failed code=%s", error.code)
