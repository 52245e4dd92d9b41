"""The Socket.IO packets ssoio sends most (room events, acks), encoded as python-socketio
5.18's ``Packet.encode`` encodes them, without the packet object and its walk over the
data looking for binary parts (``Packet.__init__``'s ``data_is_binary``): a relayed
event's copy and its ack cost ~13 µs less (fingerprinted with pieces ``socketio.fanout``
and ``socketio.server`` of ``ssoio.transport.gates``).

Socket.IO v5 "Packet encoding": the type digit, the namespace and a comma unless it is
"/", the ack id, the JSON data. Data with a binary part cannot be JSON (``dumps`` refuses
bytes with a ``TypeError``): then None, and python-socketio's class encodes it.
"""

from __future__ import annotations

from typing import Any

from engineio import packet as eio_packet
from socketio import packet

__all__ = ["encoded", "messages"]


def encoded(kind: int, namespace: str, data: list[Any], ack_id: int | None = None) -> str | None:
    """The text of a ``kind`` packet (EVENT or ACK), or None when ``data`` is not plain
    JSON (python-socketio's ``Packet`` must encode it: binary attachments)."""
    try:
        body = packet.Packet.json.dumps(data, separators=(",", ":"))
    except TypeError:
        return None
    where = "" if namespace == "/" else f"{namespace},"
    return f"{kind}{where}{'' if ack_id is None else ack_id}{body}"


def messages(
    packet_class: type[Any], kind: int, namespace: str, data: list[Any], ack_id: int | None = None
) -> list[Any]:
    """The Engine.IO message(s) carrying a ``kind`` packet: one text (``encoded``), or,
    with binary parts or another packet class than python-socketio's JSON one, what that
    class encodes (the text, then each attachment)."""
    text = encoded(kind, namespace, data, ack_id) if packet_class is packet.Packet else None
    if text is not None:
        parts: Any = [text]
    else:
        parts = packet_class(kind, namespace=namespace, data=data, id=ack_id).encode()
    return [eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (parts if isinstance(parts, list) else [parts])]  # fmt: skip
