"""Reliable consumption and publishing of akros_msgs messages on Redis Streams with FastStream.

What FastStream leaves to us (DESIGN.md section 8), and this module adds:
- consumer groups created at id 0, so nothing published before the first consumer is skipped;
- a reclaim subscriber (XAUTOCLAIM) that takes over messages left pending by a dead consumer;
- delivery counting with a limit, after which a message moves to the dead-letter stream with
  its reason, its original fields, its delivery count and the errors of each attempt;
- malformed entries, and entries of a type the stream does not carry, dead-lettered at once
  with the reason (never acknowledged without that record); acknowledgement only after the
  handler succeeded.

Handlers are typed with the stream's message union (see akros_msgs.streams), so a consumer
that does not handle every type its stream carries fails type-checking.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from faststream import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisBatchStreamMessage, RedisStreamMessage
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from akros_bus.collector import Activity
from akros_bus.logs import get_logger
from akros_bus.settings import BusSettings
from akros_bus.wire import DATA_FIELD, JsonMessageFormat, entry_as_text
from akros_msgs import SYSTEM_ACTOR, Message, MessageDeadLettered, Stream, stream_of

M = TypeVar("M", bound=Message)
DeadLetterHandler = Callable[[bytes, str, bool], Awaitable[None]]
"""Told of each entry once it is dead-lettered: its raw body, the reason, and whether it was
malformed (else its deliveries ran out). A consumer can still answer the request it carried,
so that nobody waits for an outcome that will never come."""

_FAILURE_HISTORY_TTL_S = 7 * 24 * 3600
_MAX_ERROR_TEXT = 500
_MAX_SHOWN_TYPE = 80
_NO_TYPE = object()


@dataclass(frozen=True)
class _Entry:
    """One stream entry being handled: its id, its fields as read and the body they carry."""

    id: bytes
    fields: Mapping[bytes, bytes]
    body: bytes

    @classmethod
    def of(cls, message: RedisStreamMessage) -> "_Entry":
        return cls(message.raw_message["message_ids"][0], message.raw_message["data"], message.body)

    @classmethod
    def read(cls, message: RedisBatchStreamMessage) -> list["_Entry"]:
        """The entries of one batch read (the body is the ``__data__`` field, if any)."""
        ids: list[bytes] = message.raw_message["message_ids"]
        entries: list[dict[bytes, bytes]] = message.raw_message["data"]
        return [
            cls(entry_id, fields, fields.get(DATA_FIELD) or b"")
            for entry_id, fields in zip(ids, entries, strict=True)
        ]


class _InFlight:
    """The handlers of one concurrent subscription running side by side, at most ``limit``.

    FastStream's own concurrent subscriber hands each entry over through an anyio queue and
    two semaphores, several event-loop turns per entry: in a burst its reader fell behind the
    stream by a hundred milliseconds while the loop was busy. Here the entries of one read
    are started at once, without yielding while a slot is free; a full set of slots holds the
    reader back, which is the backpressure.
    """

    def __init__(self, limit: int, log: Any) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._log = log
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, work: Coroutine[Any, Any, None]) -> None:
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: "asyncio.Task[None]") -> None:
        self.tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and (error := task.exception()) is not None:
            # The entry stays pending; the reclaim subscriber delivers it again.
            self._log.error("could not finish handling an entry", error=repr(error))


def should_dead_letter(delivery_count: int, max_deliveries: int) -> bool:
    """After a failed attempt: give up once the message has had all its deliveries."""
    return delivery_count >= max_deliveries


def describe_validation_error(error: ValidationError) -> str:
    """A one-line reason naming each bad field, e.g. "cpu: 'lots' is not a quantity"."""
    parts = []
    for item in error.errors(include_url=False)[:5]:
        location = ".".join(str(part) for part in item["loc"]) or "message"
        parts.append(f"{location}: {item['msg']}")
    return "malformed message: " + "; ".join(parts)


def rejection_reason(stream: Stream[Any], error: ValidationError) -> str:
    """Why ``stream``'s parser refused an entry: a type the stream does not carry is named as
    such (a producer newer than this consumer, typically), anything else by field.

    The type is read from pydantic's own error, not by parsing the body again: a body nested
    too deep for ``json`` raised RecursionError here, and the entry was retried until its
    deliveries ran out."""
    kind = _unknown_type(error)
    if kind is _NO_TYPE:
        return describe_validation_error(error)
    shown = repr(kind)
    if len(shown) > _MAX_SHOWN_TYPE:
        shown = shown[:_MAX_SHOWN_TYPE] + "..."
    carried = ", ".join(sorted(stream.type_names))
    return f"unknown message type {shown} on stream '{stream.name}' (it carries: {carried})"


def _unknown_type(error: ValidationError) -> object:
    """The ``type`` the entry gave that its stream does not carry; ``_NO_TYPE`` if none."""
    for item in error.errors(include_url=False):
        # A stream of several types names a discriminator tag it does not know...
        if item["type"] == "union_tag_invalid" and isinstance(item["input"], dict):
            return item["input"].get("type")
        # ...one of a single type, a literal it does not match.
        if item["type"] == "literal_error" and tuple(item["loc"]) == ("type",):
            return item["input"]
    return _NO_TYPE


class Bus:
    """The event backbone of one service: publish messages, consume them reliably.

    Handlers receive validated akros_msgs models. A handler that returns has its message
    acknowledged; one that raises leaves it pending, to be redelivered after
    ``reclaim_idle_ms`` until ``max_deliveries`` is reached and it is dead-lettered.
    Handlers must therefore be idempotent: at-least-once delivery is the guarantee.
    """

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.activity = Activity()
        """When a message last arrived: full garbage collections wait for a quiet moment."""
        self.broker = RedisBroker(
            str(settings.redis_url),
            message_format=JsonMessageFormat,
            graceful_timeout=settings.graceful_timeout_s,
            # redis-py's pool refuses (MaxConnectionsError) beyond its size rather than waiting.
            max_connections=settings.redis_max_connections,
            logger=logging.getLogger("akros.faststream"),
            # Per-message "Received"/"Processed" lines cost ~20% of throughput at INFO.
            log_level=logging.DEBUG,
            # Callbacks take the raw message from the context instead of injected arguments:
            # FastDepends resolves Context() in a worker thread, a thread hop per message.
            apply_types=False,
        )
        self._groups: set[tuple[str, str]] = set()
        self._in_flight: list[_InFlight] = []
        self._dead_letter_hooks: dict[tuple[str, str], DeadLetterHandler] = {}
        # Entries being handled now, per (stream, group): their claims are kept alive.
        self._held: dict[tuple[str, str], set[bytes]] = {}
        self._keeping_claims: asyncio.Task[None] | None = None
        self._log = get_logger("akros.bus")
        self._redis: Redis | None = None

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, message: Message, *, pipeline: Pipeline | None = None) -> None:
        """Append ``message`` to its stream (capped at the stream's length, approximately)."""
        stream = stream_of(message)
        await self.broker.publish(
            message.model_dump_json().encode(),
            stream=stream.name,
            maxlen=stream.max_length,
            pipeline=pipeline,
        )

    async def publish_many(self, messages: Sequence[Message]) -> None:
        """Append several messages in one round trip (a pipeline, not a transaction).

        The XADDs are written here in the wire format rather than through FastStream's
        publisher, whose per-message machinery took half the time of a few thousand."""
        if not messages:
            return
        async with self.redis.pipeline(transaction=False) as pipeline:
            for message in messages:
                stream = stream_of(message)
                pipeline.xadd(
                    stream.name,
                    {DATA_FIELD: message.model_dump_json().encode()},
                    maxlen=stream.max_length,
                    approximate=True,
                )
            await pipeline.execute()

    # -- consuming --------------------------------------------------------------------------

    def consume(
        self,
        stream: Stream[M],
        group: str,
        *,
        concurrency: int = 1,
        on_dead_letter: DeadLetterHandler | None = None,
    ) -> Callable[[Callable[[M], Awaitable[None]]], Callable[[M], Awaitable[None]]]:
        """Register ``handler(message)`` for each message of ``stream`` in consumer ``group``.

        The handler takes the stream's message union (``M``); an entry of any other type, or
        one that does not validate, never reaches it: it is dead-lettered with the reason.

        With ``concurrency`` above 1, up to that many messages are handled at once by this
        process (each still acknowledged on its own); handlers must then tolerate running
        side by side. ``on_dead_letter`` hears of each entry dead-lettered, malformed or not.
        """

        def register(handler: Callable[[M], Awaitable[None]]) -> Callable[[M], Awaitable[None]]:
            async def on_new(_: object) -> None:
                await self._deliver(
                    stream,
                    group,
                    handler,
                    _Entry.of(self._current()),
                    delivery_count=1,
                )

            async def on_read(_: object) -> None:
                for entry in _Entry.read(self._current()):
                    await in_flight.start(
                        self._deliver(
                            stream,
                            group,
                            handler,
                            entry,
                            delivery_count=1,
                        )
                    )

            if concurrency == 1:
                self._subscribe(stream, group, on_new, batch=False)
            else:
                in_flight = _InFlight(concurrency, self._log)
                self._in_flight.append(in_flight)
                self._subscribe(stream, group, on_read, batch=True)
            self._subscribe_reclaim(stream, group, handler)
            if on_dead_letter is not None:
                self._dead_letter_hooks[(stream.name, group)] = on_dead_letter
            return handler

        return register

    def consume_batch(
        self, stream: Stream[M], group: str
    ) -> Callable[[Callable[[list[M]], Awaitable[None]]], Callable[[list[M]], Awaitable[None]]]:
        """Register ``handler(messages)`` for up to ``read_count`` messages at a time."""

        def register(
            handler: Callable[[list[M]], Awaitable[None]],
        ) -> Callable[[list[M]], Awaitable[None]]:
            async def on_batch(_: object) -> None:
                await self._deliver_batch(stream, group, handler, self._current())

            async def one_at_a_time(message: M) -> None:
                await handler([message])

            self._subscribe(stream, group, on_batch, batch=True)
            self._subscribe_reclaim(stream, group, one_at_a_time)
            return handler

        return register

    def _subscribe(
        self,
        stream: Stream[Any],
        group: str,
        callback: Callable[..., Awaitable[None]],
        *,
        batch: bool,
    ) -> None:
        self._groups.add((stream.name, group))
        self._register(
            StreamSub(
                stream.name,
                group=group,
                consumer=self.settings.consumer_name,
                batch=batch,
                max_records=self.settings.read_count,
                polling_interval=self.settings.poll_interval_ms,
            ),
            callback,
        )

    def _current(self) -> Any:
        """The broker message being handled (FastStream keeps it in a context variable)."""
        return self.broker.context.get_local("message")

    def _register(
        self,
        source: StreamSub,
        callback: Callable[..., Awaitable[None]],
    ) -> None:
        """Subscribe with manual acks: only this module decides when a message is done."""
        self.broker.subscriber(
            stream=source,
            ack_policy=AckPolicy.MANUAL,
            parser=_tolerant_parser,
            decoder=_undecoded,
            include_in_schema=False,
        )(callback)

    def _subscribe_reclaim(
        self,
        stream: Stream[M],
        group: str,
        handler: Callable[[M], Awaitable[None]],
    ) -> None:
        async def on_reclaimed(_: object) -> None:
            message: RedisStreamMessage = self._current()
            delivery_count = await message.get_delivery_count()
            if delivery_count > self.settings.max_deliveries:
                # The consumers it was given to died or hung before reporting any outcome.
                await self._dead_letter(
                    stream,
                    group,
                    _Entry.of(message),
                    reason=f"no outcome after {delivery_count - 1} deliveries",
                    delivery_count=delivery_count,
                    malformed=False,
                )
                return
            await self._deliver(
                stream,
                group,
                handler,
                _Entry.of(message),
                delivery_count=delivery_count,
            )

        self._register(
            StreamSub(
                stream.name,
                group=group,
                consumer=self.settings.consumer_name,
                min_idle_time=self.settings.reclaim_idle_ms,
                polling_interval=self.settings.reclaim_interval_ms,
            ),
            on_reclaimed,
        )

    async def _deliver(
        self,
        stream: Stream[M],
        group: str,
        handler: Callable[[M], Awaitable[None]],
        entry: _Entry,
        *,
        delivery_count: int,
    ) -> None:
        self.activity.note()
        try:
            parsed = stream.parse(entry.body)
        except ValidationError as error:
            reason = rejection_reason(stream, error)
            await self._dead_letter(
                stream, group, entry, reason=reason, delivery_count=delivery_count, malformed=True
            )
            return
        held = self._held.setdefault((stream.name, group), set())
        held.add(entry.id)
        try:
            with structlog.contextvars.bound_contextvars(
                request_id=parsed.request_id, message_type=getattr(parsed, "type", "")
            ):
                try:
                    await handler(parsed)
                except Exception as error:
                    await self._after_failure(stream, group, entry, error, delivery_count)
                    return
            await self.redis.xack(stream.name, group, entry.id)
        finally:
            held.discard(entry.id)

    async def _deliver_batch(
        self,
        stream: Stream[M],
        group: str,
        handler: Callable[[list[M]], Awaitable[None]],
        message: RedisBatchStreamMessage,
    ) -> None:
        self.activity.note()
        valid: list[M] = []
        valid_ids: list[bytes] = []
        for entry in _Entry.read(message):
            try:
                valid.append(stream.parse(entry.body))
                valid_ids.append(entry.id)
            except ValidationError as error:
                await self._dead_letter(
                    stream,
                    group,
                    entry,
                    reason=rejection_reason(stream, error),
                    delivery_count=1,
                    malformed=True,
                )
        if not valid:
            return
        try:
            await handler(valid)
        except Exception as error:
            self._log.warning(
                "batch handler failed; its messages will be redelivered one by one",
                stream=stream.name,
                group=group,
                size=len(valid),
                error=repr(error),
            )
            return
        await self.redis.xack(stream.name, group, *valid_ids)

    async def _after_failure(
        self,
        stream: Stream[Any],
        group: str,
        entry: _Entry,
        error: Exception,
        delivery_count: int,
    ) -> None:
        history_key = _failure_history_key(stream.name, group, entry.id)
        error_text = f"delivery {delivery_count}: {error!r}"[:_MAX_ERROR_TEXT]
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.rpush(history_key, error_text)
            pipeline.expire(history_key, _FAILURE_HISTORY_TTL_S)
            await pipeline.execute()
        if should_dead_letter(delivery_count, self.settings.max_deliveries):
            await self._dead_letter(
                stream,
                group,
                entry,
                reason=f"handler failed on all {delivery_count} deliveries; last error: {error!r}",
                delivery_count=delivery_count,
                malformed=False,
            )
            return
        self._log.warning(
            "handler failed; the message stays pending and will be redelivered",
            stream=stream.name,
            group=group,
            entry_id=entry.id.decode(),
            delivery_count=delivery_count,
            max_deliveries=self.settings.max_deliveries,
            error=repr(error),
            exc_info=error,
        )

    async def _dead_letter(
        self,
        stream: Stream[Any],
        group: str,
        entry: _Entry,
        *,
        reason: str,
        delivery_count: int,
        malformed: bool,
    ) -> None:
        history_key = _failure_history_key(stream.name, group, entry.id)
        history = await self.redis.lrange(history_key, 0, -1)
        errors = [e.decode(errors="replace") if isinstance(e, bytes) else e for e in history]
        await self._publish_dead_letter(
            stream, group, entry.id, entry.fields, reason, delivery_count, errors
        )
        # Acknowledged only once the dead letter is stored: nothing is lost in between.
        await self.redis.xack(stream.name, group, entry.id)
        await self.redis.delete(history_key)
        if hook := self._dead_letter_hooks.get((stream.name, group)):
            await hook(entry.body, reason, malformed)

    async def _publish_dead_letter(
        self,
        stream: Stream[Any],
        group: str,
        entry_id: bytes,
        fields: Mapping[bytes, bytes],
        reason: str,
        delivery_count: int,
        errors: list[str],
    ) -> None:
        self._log.error(
            "message dead-lettered",
            stream=stream.name,
            group=group,
            entry_id=entry_id.decode(),
            reason=reason,
            delivery_count=delivery_count,
        )
        await self.publish(
            MessageDeadLettered(
                request_id=f"dead-letter:{entry_id.decode()}",
                actor=SYSTEM_ACTOR,
                stream=stream.name,
                group=group,
                entry_id=entry_id.decode(),
                reason=reason,
                delivery_count=delivery_count,
                original=entry_as_text(dict(fields)),
                errors=errors,
            )
        )

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("the bus is not connected; call start() first")
        return self._redis

    async def connect(self) -> None:
        """Connect without consuming: enough for a publisher-only service."""
        if self._redis is None:
            self._redis = await self.broker.connect()

    async def start(self) -> None:
        """Connect, create every consumer group at id 0, then start consuming."""
        await self.connect()
        for stream_name, group in sorted(self._groups):
            await ensure_group(self.redis, stream_name, group)
        await self.broker.start()
        self._keeping_claims = asyncio.create_task(self._keep_claims())
        self._log.info(
            "bus started",
            consumer=self.settings.consumer_name,
            groups=[f"{s}/{g}" for s, g in sorted(self._groups)],
        )

    async def stop(self) -> None:
        """Stop reading; wait up to graceful_timeout_s for messages in flight, then close.

        A bus not connected, or stopped already, is left as it is: a service's lifespan stops
        its bus on the way out whether or not ``serve`` drained it first."""
        if self._redis is None:
            return
        for subscriber in self.broker.subscribers:
            await subscriber.stop()
        running = [task for in_flight in self._in_flight for task in in_flight.tasks]
        if running:
            await asyncio.wait(running, timeout=self.settings.graceful_timeout_s)
        if self._keeping_claims is not None:
            self._keeping_claims.cancel()
            await asyncio.gather(self._keeping_claims, return_exceptions=True)
            self._keeping_claims = None
        await self.broker.stop()
        self._redis = None

    async def _keep_claims(self) -> None:
        """Reset the idle time of every entry this consumer is still handling, three times per
        ``reclaim_idle_ms``: only the entries of a consumer that died or hangs go idle long
        enough to be taken over. A handler that waited its turn for seconds in a burst was
        otherwise reclaimed while running, handled twice at once, and after ``max_deliveries``
        such takeovers dead-lettered and acknowledged; had it then failed, nothing remained to
        retry it. XCLAIM with JUSTID leaves the delivery count alone."""
        period_s = self.settings.reclaim_idle_ms / 3000
        while True:
            await asyncio.sleep(period_s)
            for (stream_name, group), held in list(self._held.items()):
                if not held:
                    continue
                try:
                    await self.redis.xclaim(
                        stream_name,
                        group,
                        self.settings.consumer_name,
                        0,
                        list(held),
                        justid=True,
                    )
                except (RedisError, OSError) as error:
                    self._log.warning("could not keep claims alive", error=repr(error))

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        """Redis answers, and every consume loop is still running."""
        try:
            async with asyncio.timeout(timeout_s):
                alive = bool(await self.redis.ping())
        except (TimeoutError, RuntimeError, OSError, ConnectionError):
            return False
        return alive and all(s.running for s in self.broker.subscribers)


async def ensure_group(redis: Redis, stream_name: str, group: str) -> None:
    """Create ``group`` at id 0 (creating the stream too); an existing group is left alone."""
    try:
        await redis.xgroup_create(stream_name, group, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def _failure_history_key(stream_name: str, group: str, entry_id: bytes) -> str:
    return f"akros:failures:{stream_name}:{group}:{entry_id.decode()}"


async def _tolerant_parser(raw: dict[str, Any], original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser, made to never fail: an entry it cannot read (binary garbage
    written with a raw XADD) is passed on as readable text, so that validation rejects it and
    it is dead-lettered instead of being redelivered forever."""
    try:
        return await original(raw)
    except Exception:
        data = raw["data"]
        if isinstance(data, list):
            raw["data"] = [_as_text_entry(fields) for fields in data]
        else:
            raw["data"] = _as_text_entry(data)
        return await original(raw)


async def _undecoded(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """Skip FastStream's JSON decoding: handlers get the body validated once, by pydantic."""
    return message.body


def _as_text_entry(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {DATA_FIELD: json.dumps(entry_as_text(fields)).encode()}
