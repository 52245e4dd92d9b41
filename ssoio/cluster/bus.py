"""Messages between the nodes of a cluster, over one Redis pub/sub channel.

python-socketio's Redis manager carries emits to rooms and single-sid disconnects
between nodes, nothing more. Security actions must reach every node too: a logout or a
kick received by node A must disconnect the user's sockets on node B; a relayed message
whose fields are filtered per recipient must be filtered by the node that holds each
recipient; presence must list members on every node. This bus carries those.

* ``publish(kind, body)``: fire and forget, to every other node.
* Kinds in ``echoed`` are handled by the node that sent them too: a room event that a
  Redis script logs and publishes at once (``cluster.recovery``) reaches every node's
  members, the sender's included, in the log's order. The listener handles messages one
  after the other, so that order holds on the wire.
* ``request(kind, body)``: ask every other live node and gather their answers, waiting at
  most ``cluster.request_timeout_s``; nodes announce themselves with a heartbeat key.
* Redis down: ``publish`` and ``request`` report it (``False`` / incomplete) instead of
  raising; the listener reconnects with a back-off and the state changes are audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ssoio.audit import Observer
from ssoio.config.cluster import ClusterSettings

__all__ = ["ClusterBus", "Handler"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
REDIS_CONNECTIONS = 64


class _Gathering:
    """Answers to one request, complete when every expected node has answered."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.answers: list[Any] = []
        self.done = asyncio.Event()

    def add(self, answer: Any) -> None:
        self.answers.append(answer)
        if len(self.answers) >= self.expected:
            self.done.set()


class ClusterBus:
    """One node's end of the cluster channel."""

    def __init__(self, settings: ClusterSettings, observe: Observer) -> None:
        self.settings = settings
        self.node_id = settings.node_id or f"{socket.gethostname()}-{os.getpid()}"
        self.observe = observe
        # A pool that waits (at most 2 s) for a free connection: redis-py's default one
        # refuses at once beyond 100 in use, and a reconnect storm (every client of a
        # stopped node, each connect with its shared limits and recovery) gets there.
        # A pooled connection Redis dropped (a restart, a failover) fails its next command
        # before sending it: retried once on a new connection. Never on a timeout, where
        # the command may have run (an event logged twice): redis-py's Retry retries
        # timeouts too unless told which errors it may retry.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=2,
            socket_timeout=2, socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1,
                        supported_errors=(RedisConnectionError,)),
            retry_on_error=[RedisConnectionError],
        )  # fmt: skip
        self.redis = aioredis.Redis.from_pool(pool)
        self.handlers: dict[str, Handler] = {}
        self.echoed: set[str] = set()  # kinds this node handles when it sent them, too
        self.listening = False  # subscribed to the channel now
        self.healthy = False
        self._replies: dict[str, _Gathering] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    @property
    def _channel(self) -> str:
        return f"{self.settings.channel}:cluster"

    def framing(self, kind: str) -> tuple[str, str]:
        """(the channel, a message of ``kind`` from this node up to its body): for a Redis
        script that publishes a message whose body it writes itself (``cluster.recovery``)."""
        start = json.dumps({"kind": kind, "from": self.node_id}, separators=(",", ":"))
        return self._channel, start[:-1] + ',"body":'

    def _node_key(self, node: str) -> str:
        return f"{self.settings.channel}:node:{node}"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening and announcing this node (waits briefly for the subscription)."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="ssoio-cluster-listen"),
            asyncio.create_task(self._heartbeat(), name="ssoio-cluster-heartbeat"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 3)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*_FAILURES):
            await self.redis.delete(self._node_key(self.node_id))
        await self.redis.aclose()

    # -- sending ------------------------------------------------------------------------------

    async def publish(self, kind: str, body: dict[str, Any], request_id: str | None = None) -> bool:
        """Send to every other node; False when Redis cannot be reached."""
        message = {"kind": kind, "from": self.node_id, "body": body}
        if request_id is not None:
            message["request_id"] = request_id
        try:
            await self.redis.publish(self._channel, json.dumps(message, default=str))
        except _FAILURES as exc:
            self._down(exc)
            return False
        return True

    async def request(self, kind: str, body: dict[str, Any]) -> tuple[list[Any], bool]:
        """Ask every other live node; (answers, whether every node answered in time)."""
        try:
            expected = await self._other_nodes()
        except _FAILURES as exc:
            self._down(exc)
            return [], False
        if expected == 0:
            return [], True
        request_id = uuid.uuid4().hex
        gathering = self._replies[request_id] = _Gathering(expected)
        try:
            if not await self.publish(kind, body, request_id):
                return [], False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gathering.done.wait(), self.settings.request_timeout_s)
            return list(gathering.answers), gathering.done.is_set()
        finally:
            del self._replies[request_id]

    async def _other_nodes(self) -> int:
        pattern = self._node_key("*")
        nodes = [key async for key in self.redis.scan_iter(match=pattern, count=100)]
        return len([n for n in nodes if n.decode() != self._node_key(self.node_id)])

    # -- receiving ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = 0.25
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.listening = True
                    self._up()
                    self._subscribed.set()
                    delay = 0.25
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None:
                            await self._dispatch(message.get("data"))
            except asyncio.CancelledError:
                self.listening = False
                raise
            except _FAILURES as exc:
                self.listening = False
                self._down(exc)
                self._subscribed.set()  # do not hold start-up for a Redis that is down
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _dispatch(self, raw: Any) -> None:
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            return
        if not isinstance(message, dict):
            return
        kind, body = message.get("kind"), message.get("body")
        if message.get("from") == self.node_id and kind not in self.echoed:
            return
        if kind == "reply":
            gathering = self._replies.get(str(message.get("request_id")))
            if gathering is not None and message.get("to") == self.node_id:
                gathering.add(body)
            return
        handler = self.handlers.get(str(kind))
        if handler is None or not isinstance(body, dict):
            return
        try:
            answer = await handler(body)
        except Exception as exc:  # one bad message must not stop the listener
            log.error("cluster.handler.failed kind=%s error=%s", kind, type(exc).__name__)
            return
        if "request_id" in message:
            await self._reply(message, answer)

    async def _reply(self, request: dict[str, Any], answer: Any) -> None:
        reply = {"kind": "reply", "from": self.node_id, "to": request.get("from"),
                 "request_id": request["request_id"], "body": answer}  # fmt: skip
        with contextlib.suppress(*_FAILURES):
            await self.redis.publish(self._channel, json.dumps(reply, default=str))

    async def _heartbeat(self) -> None:
        ttl = max(1, round(self.settings.heartbeat_s * 3))
        while True:
            try:
                await self.redis.set(self._node_key(self.node_id), "1", ex=ttl)
            except _FAILURES as exc:
                self._down(exc)
            await asyncio.sleep(self.settings.heartbeat_s)

    def _down(self, exc: BaseException) -> None:
        if self.healthy:
            self.healthy = False
            self.observe("cluster.down", node=self.node_id, kind=type(exc).__name__)

    def _up(self) -> None:
        if not self.healthy:
            self.healthy = True
            self.observe("cluster.up", node=self.node_id)
