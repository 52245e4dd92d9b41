"""websockets: the handshake's line-length limit is process-wide, not a parameter.

websockets.http11 reads MAX_LINE_LENGTH (8192) and MAX_NUM_HEADERS (128) from the
environment once, at import, and every parser in the process uses the module globals.
A server that must accept a longer header line (an Authorization header with a large
bearer token: RFC 6750 sets no size, and identity providers issue tokens over 8 KiB)
can only raise the limit for every server and client in the process, by assigning the
module global (or setting WEBSOCKETS_MAX_LINE_LENGTH before the import). ServerProtocol
(used by uvicorn) has a max_size parameter for messages but none for the handshake.

Sans-I/O: two ServerProtocol instances are fed the same handshake with a 9 KiB
Authorization header. Exit status 1: no per-connection limit; 0: there is one.
"""

import base64
import inspect
import os
import sys

import websockets
import websockets.http11
from websockets.http11 import Request
from websockets.server import ServerProtocol

HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
    f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {'a' * 9000}\r\n\r\n"
).encode()


def outcome(protocol):
    protocol.receive_data(HANDSHAKE)
    if any(isinstance(event, Request) for event in protocol.events_received()):
        return "request accepted"
    answer = b"".join(protocol.data_to_send()).split(b"\r\n")[0].decode()
    return f"refused: {answer or type(protocol.handshake_exc).__name__}"


def main():
    print(f"websockets {websockets.__version__}")
    params = inspect.signature(ServerProtocol).parameters
    limits = [name for name in params if "line" in name or "header" in name]
    print(f"ServerProtocol parameters for handshake limits: {limits or 'none'}")
    print(f"default limit (websockets.http11.MAX_LINE_LENGTH): {websockets.http11.MAX_LINE_LENGTH}")
    print(f"server A (wants 16 KiB lines), server B (wants the default): "
          f"A {outcome(make(16384))}; B {outcome(make(None))}")  # fmt: skip
    default = websockets.http11.MAX_LINE_LENGTH
    websockets.http11.MAX_LINE_LENGTH = 16384  # the only way for A: every parser changes
    try:
        print(f"after websockets.http11.MAX_LINE_LENGTH = 16384: "
              f"A {outcome(make(16384))}; B {outcome(make(None))}")  # fmt: skip
    finally:
        websockets.http11.MAX_LINE_LENGTH = default
    broken = not limits
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


def make(max_line_length):
    """A server protocol wanting ``max_line_length`` (if the library lets it say so)."""
    supported = "max_line_length" in inspect.signature(ServerProtocol).parameters
    if max_line_length is not None and supported:
        return ServerProtocol(max_line_length=max_line_length)
    return ServerProtocol()


if __name__ == "__main__":
    sys.exit(main())
