"""The audit log: trading events published losslessly to their own stream, and read back.

`AuditLog` publishes `TradingEvent`s to a plain stream (`trading_audit_log` by default, created
on start with long retention) through the tick `Producer` in plain-stream mode: the same
per-message publishing ids, bounded in-flight window, re-send until confirmed and broker
deduplication under the producer's name. `publish` numbers events after what the broker stored
under that name; `publish_with_ids` takes the caller's ids (a strategy derives them from tick
offsets, so a successor re-publishing the same decisions is deduplicated).

`replay_log` rebuilds the `Ledger` from the log alone, up to any instant; `tail_log` follows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from partitioning.codec import message_body
from partitioning.producer import Producer, ProducerConfig, ProducerState
from superticks.errors import DecodeError, StreamNotFound
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Chunk, Offset, Subscription
from trading.events import NO_SYMBOL, TradingEvent, event_body
from trading.ledger import Ledger
from trading.reading import read_to_end

__all__ = [
    "AUDIT_STREAM",
    "AuditConfig",
    "AuditLog",
    "audit_arguments",
    "decode_log_messages",
    "fold_messages",
    "replay_log",
    "tail_log",
]

AUDIT_STREAM = "trading_audit_log"

_NAME = r"^[A-Za-z0-9._-]+$"


class AuditConfig(BaseModel):
    """Where the audit log lives, under which producer name events are published, and how
    long the broker keeps them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: ConnectionSettings = Field(default_factory=ConnectionSettings)
    stream: str = Field(default=AUDIT_STREAM, min_length=1, pattern=_NAME)
    name: str = Field(default="audit", min_length=1, max_length=200, pattern=_NAME)
    """The producer name: deduplication is per (name, stream); one live publisher per name."""
    max_age_days: int = Field(default=3650, ge=1)
    max_length_bytes: int = Field(default=100_000_000_000, ge=1)
    max_in_flight: int = Field(default=10_000, ge=1)
    name_wait_s: float = Field(default=3.0, gt=0)
    """How long `start()` waits for the producer name to be free (`ProducerNameInUse`)."""


def audit_arguments(config: AuditConfig) -> dict[str, Any]:
    """The stream arguments of the audit log (long retention)."""
    return {
        "max-age": f"{config.max_age_days}D",
        "max-length-bytes": config.max_length_bytes,
        "stream-max-segment-size-bytes": 500_000_000,
    }


class AuditLog:
    """Publishes trading events to the audit stream, losing and duplicating none.

    ``async with AuditLog(config) as log: await (await log.publish(events))``. `start()`
    creates the stream if it is missing; `stop()` waits for the confirms of what was published
    (up to `timeout_s`) and closes; safe twice. The awaited `publish*` call only waits for room
    in the in-flight window; the future it returns resolves once the broker has every event.
    """

    def __init__(self, config: AuditConfig | None = None) -> None:
        self.config = config or AuditConfig()
        cfg = self.config
        self._producer = Producer(
            ProducerConfig(
                connection=cfg.connection,
                stream=cfg.stream,
                name=cfg.name,
                max_in_flight=cfg.max_in_flight,
                name_wait_s=cfg.name_wait_s,
            )
        )

    @property
    def state(self) -> ProducerState:
        return self._producer.state

    @property
    def published(self) -> int:
        """Events written to the broker by this publisher (re-sends not counted)."""
        return self._producer.metrics.sent

    async def start(self) -> None:
        async with Admin(self.config.connection) as admin:
            await admin.create_stream(self.config.stream, audit_arguments(self.config))
        await self._producer.start()

    async def stop(self, timeout_s: float = 30.0) -> None:
        await self._producer.stop(timeout_s)

    async def __aenter__(self) -> AuditLog:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def next_id(self) -> int:
        """The publishing id `publish` gives the next event."""
        return self._producer.next_id(0)

    async def publish(self, events: Sequence[TradingEvent]) -> asyncio.Future[None]:
        """Publish `events` in order under the next publishing ids of this producer name."""
        first = self.next_id()
        return await self.publish_with_ids([(first + i, e) for i, e in enumerate(events)])

    async def publish_with_ids(
        self, items: Sequence[tuple[int, TradingEvent]]
    ) -> asyncio.Future[None]:
        """Publish (publishing id, event) pairs in order; ids must increase. An id at or below
        what this producer name already published is not written again (see
        `Producer.send_with_ids`): re-publishing the same decisions is harmless."""
        return await self._producer.send_with_ids(
            [(pid, event.symbol or NO_SYMBOL, event.to_message()) for pid, event in items]
        )

    async def flush(self, timeout_s: float | None = None) -> None:
        await self._producer.flush(timeout_s)


def decode_log_messages(
    first_offset: int, messages: Sequence[bytes]
) -> list[tuple[int, dict[str, Any] | DecodeError]]:
    """(offset, wire dict) of each message, or (offset, DecodeError) for one that is not an
    event's JSON object."""
    out: list[tuple[int, dict[str, Any] | DecodeError]] = []
    loads = orjson.loads
    offset = first_offset
    for message in messages:
        try:
            data = loads(event_body(message))
        except (ValueError, orjson.JSONDecodeError) as exc:
            out.append((offset, DecodeError(f"not a trading event: {exc}")))
        else:
            if type(data) is dict:
                out.append((offset, data))
            else:
                out.append((offset, DecodeError("not a trading event: body is not an object")))
        offset += 1
    return out


def fold_messages(ledger: Ledger, first_offset: int, messages: Sequence[bytes]) -> None:
    """Fold a run of log messages into `ledger` (indexes are stream offsets)."""
    apply = ledger.apply_json
    body = message_body  # what `event_body` is, one call less
    offset = first_offset - 1
    for message in messages:
        offset += 1
        try:
            data = body(message)
        except ValueError as exc:
            ledger.refuse(offset, None, f"not a trading event: {exc}")
            continue
        apply(data, offset)


async def replay_log(
    settings: ConnectionSettings,
    stream: str = AUDIT_STREAM,
    *,
    until_us: int | None = None,
    on_event: Callable[[int, dict[str, Any]], None] | None = None,
    timeout_s: float = 300.0,
) -> Ledger:
    """The ledger the whole log (as stored now) implies at `until_us` (None: at its end).
    `on_event(offset, wire dict)` also sees every decodable event (e.g. to list trades)."""
    ledger = Ledger(until_us=until_us)

    def on_messages(first: int, messages: list[bytes]) -> None:
        if on_event is None:
            fold_messages(ledger, first, messages)
            return
        for offset, data in decode_log_messages(first, messages):
            if isinstance(data, DecodeError):
                ledger.refuse(offset, None, str(data))
            else:
                ledger.apply(data, offset)
                on_event(offset, data)

    await read_to_end(settings, stream, on_messages, timeout_s=timeout_s)
    return ledger


async def tail_log(
    settings: ConnectionSettings,
    on_event: Callable[[int, dict[str, Any] | DecodeError], None],
    stream: str = AUDIT_STREAM,
    *,
    start: Offset | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Follow the log from `start` (default: events stored from now on), calling `on_event`
    for each, until `stop` is set (or the call is cancelled, which closes the subscription)."""

    async def on_chunk(chunk: Chunk) -> None:
        for offset, data in decode_log_messages(chunk.first_offset, chunk.messages):
            on_event(offset, data)

    subscription = Subscription(
        settings, stream, on_chunk, start or Offset.next(), name=f"tail-{stream}"
    )
    async with Admin(settings) as admin:
        if not await admin.stream_exists(stream):
            raise StreamNotFound(f"stream {stream!r} does not exist")
    try:
        await subscription.start()
        await (stop or asyncio.Event()).wait()
    finally:
        await subscription.stop()
