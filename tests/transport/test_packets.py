"""``ssoio.transport.packets.encoded`` writes what python-socketio's ``Packet.encode``
writes, for any JSON data, namespace and ack id; binary data goes back to its class. The
WebSocket frame built once for a room event is websockets' own."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from socketio import packet
from websockets.frames import Frame, Opcode

from ssoio.transport.packets import encoded, messages
from ssoio.transport.websocket import text_frame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([packet.EVENT, packet.ACK]),
    namespace=st.sampled_from(["/", "/admin", "/a,b"]),
    ack_id=st.none() | st.integers(min_value=0, max_value=10**15),
    data=st.lists(json_values, max_size=4),
)
def test_the_text_is_python_socketios(
    kind: int, namespace: str, ack_id: int | None, data: list[Any]
) -> None:
    theirs = packet.Packet(kind, data=data, namespace=namespace, id=ack_id).encode()
    assert encoded(kind, namespace, data, ack_id) == theirs


def test_binary_data_is_left_to_python_socketio() -> None:
    assert encoded(packet.EVENT, "/", ["file", {"bytes": b"\x00"}]) is None
    assert encoded(packet.ACK, "/", [b"\x00"], 3) is None
    # messages(): python-socketio's class then encodes it, the text and its attachment
    data = ["file", {"bytes": b"\x00"}]
    theirs = packet.Packet(packet.EVENT, namespace="/", data=data).encode()
    parts = messages(packet.Packet, packet.EVENT, "/", data)
    assert [part.data for part in parts] == theirs
    assert [part.data for part in messages(packet.Packet, packet.ACK, "/a", [{}], 7)] == [
        "3/a,7[{}]"
    ]


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200) | st.sampled_from(["", "x" * 125, "x" * 126, "é" * 40_000]))
def test_a_text_frame_is_websockets_own(text: str) -> None:
    """``ssoio.transport.websocket.text_frame``: the bytes websockets writes for a server's
    ``send_text`` without extensions (RFC 6455 §5.2, each length encoding)."""
    theirs = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert text_frame(text) == theirs
