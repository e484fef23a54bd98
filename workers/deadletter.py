"""Dead letters: the JSON record of a tick that could not be handled, the AMQP message that
carries it on the dead-letter stream (and reading it back), and `DeadLetterWriter`, the
confirmed publisher on that stream."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from typing import Any

import orjson

from partitioning.codec import data_header, split_message
from superticks.errors import ConnectionFailed, StreamError
from superticks.settings import ConnectionSettings
from superticks.streams import PartitionPublisher, encode_publish_frame

__all__ = [
    "MAX_ORIGINAL_BYTES",
    "DeadLetterWriter",
    "dead_letter_message",
    "dead_letter_record",
    "describe",
    "read_dead_letter",
]

log = logging.getLogger("superticks.worker")


MAX_ORIGINAL_BYTES = 256 * 1024
"""Originals up to this size are dead-lettered whole; a larger one (a message near the broker's
frame limit would make a dead-letter frame over it, which the broker refuses by closing the
connection) is dead-lettered by reference: its first `MAX_ORIGINAL_BYTES` bytes, its size and
SHA-256, with its stream and offset, where it can still be read whole."""
MAX_ERROR_CHARS = 4000


def dead_letter_record(
    *,
    original: bytes,
    error: str,
    partition: int,
    stream: str,
    offset: int,
    group: str,
    worker: str,
) -> bytes:
    """The JSON record of a dead letter (`original`: the message's AMQP bytes, base64; cut to
    `MAX_ORIGINAL_BYTES` with ``original_truncated`` set when longer). Always well under the
    broker's frame limit, whatever the message."""
    record: dict[str, Any] = {
        "original": base64.b64encode(original[:MAX_ORIGINAL_BYTES]).decode("ascii"),
        "error": error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "...",
        "partition": partition,
        "stream": stream,
        "offset": offset,
        "group": group,
        "worker": worker,
    }
    if len(original) > MAX_ORIGINAL_BYTES:
        record["original_truncated"] = True
        record["original_size"] = len(original)
        record["original_sha256"] = hashlib.sha256(original).hexdigest()
    return orjson.dumps(record)


def dead_letter_message(record: bytes) -> bytes:
    """The AMQP 1.0 message (one data section) that carries `record` on the DLQ stream, so
    that any stream client can read it."""
    return data_header(len(record)) + record


def read_dead_letter(message: bytes) -> dict[str, Any]:
    """The record of a DLQ message, with ``original`` decoded back to bytes."""
    record: dict[str, Any] = orjson.loads(split_message(message)[1])
    record["original"] = base64.b64decode(record["original"])
    return record


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- dead-letter writer -----------------------------------------------------------------------
class DeadLetterWriter:
    """One publisher on the DLQ stream; `send()` returns once the broker confirmed."""

    def __init__(
        self, settings: ConnectionSettings, stream: str, reference: str, timeout_s: float = 5.0
    ) -> None:
        self._link = PartitionPublisher(
            settings, stream, reference, self._confirmed, self._refused, self._lost
        )
        self._timeout_s = timeout_s
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._next_id = 1
        self._started = False  # ids continue the broker's sequence for this reference
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect now (`send()` connects by itself when this was not called)."""
        async with self._lock:
            await self._start()

    async def _start(self) -> None:
        self._next_id = await self._link.start() + 1
        self._started = True

    async def stop(self) -> None:
        await self._link.stop()
        self._fail_pending(ConnectionFailed("the dead-letter publisher stopped"))

    async def send(self, message: bytes, attempts: int = 5) -> None:
        """Publish one message and wait for its confirm, reconnecting and re-sending (same id,
        deduplicated) on loss. Raises StreamError after `attempts` failures. Cancelling it
        leaves the message perhaps written, perhaps not: the caller counts it as not sent."""
        async with self._lock:
            if not self._started:
                await self._start()
            pid = self._next_id
            self._next_id += 1
            loop = asyncio.get_running_loop()
            failure: BaseException | None = None
            for attempt in range(attempts):
                future: asyncio.Future[None] = loop.create_future()
                self._pending[pid] = future
                try:
                    if not self._link.connected and await self._link.start() >= pid:
                        return  # stored; its confirm was lost with the connection
                    self._link.write(
                        encode_publish_frame(PartitionPublisher.PUBLISHER_ID, [(pid, message)])
                    )
                    await self._link.drain()
                    async with asyncio.timeout(self._timeout_s):
                        await future
                except (StreamError, TimeoutError) as exc:
                    failure = exc
                    log.warning("dead letter %d not confirmed (%s); retrying", pid, describe(exc))
                    await self._link.stop()
                    await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                else:
                    return
                finally:
                    self._pending.pop(pid, None)
            raise StreamError(f"dead letter not confirmed after {attempts} attempts: {failure}")

    def _confirmed(self, ids: list[int]) -> None:
        for pid in ids:
            future = self._pending.get(pid)
            if future is not None and not future.done():
                future.set_result(None)

    def _refused(self, errors: list[tuple[int, int]]) -> None:
        for pid, code in errors:
            future = self._pending.get(pid)
            if future is not None and not future.done():
                future.set_exception(
                    StreamError(f"the broker refused the dead letter (code {code})")
                )

    def _lost(self, why: str) -> None:
        self._fail_pending(ConnectionFailed(f"dead-letter publisher lost: {why}"))

    def _fail_pending(self, exc: BaseException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
