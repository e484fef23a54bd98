"""What a partition has sent and the broker has not yet confirmed, in publishing-id order.

The producer hands over its records in segments, one per `send_batch` call and partition: a
segment holds the records' ids (a `range` when they are consecutive, as `send_batch` gives
them; a list for `send_with_ids`), and each record as its head and body (the record on the wire
is the 8-byte id, the head, the body), with the ticket of the call it belongs to. Keeping whole
segments instead of one entry per message is what makes the bookkeeping cheap: a confirm of a
run of consecutive ids (what the broker sends: it confirms in publishing order) is checked with
one comparison and settles whole segments, with no Python work per message.

Any other confirm (ids out of order, a gap, a duplicate from a re-send) is still handled: an id
ahead of the first unconfirmed one waits in a set until the ids before it are confirmed too, so
a record counts as confirmed only once everything before it in its partition is (which is what
a re-send after reconnecting needs: the broker's stored sequence confirms a prefix).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["InFlight", "Segment", "Ticket"]


class Ticket(Protocol):
    """What a segment's ticks are counted against: done when `remaining` reaches 0."""

    remaining: int


T = TypeVar("T", bound=Ticket)


class Segment(Generic[T]):
    """Records with consecutive positions in their partition: record k has publishing id
    `ids[k]` and is `id + heads[k] + bodies[k]` on the wire. `weights[k]` is the ticks record
    k stands for (None: 1 each; a sub-entry batch stands for several)."""

    __slots__ = ("bodies", "heads", "ids", "ticket", "weights")

    def __init__(
        self,
        ids: range | list[int],
        heads: list[bytes],
        bodies: list[bytes],
        ticket: T,
        weights: list[int] | None = None,
    ) -> None:
        if not len(ids) == len(heads) == len(bodies):
            raise ValueError("a segment needs one id, head and body per record")
        if weights is not None and len(weights) != len(ids):
            raise ValueError("a segment needs one weight per record")
        self.ids = ids
        self.heads = heads
        self.bodies = bodies
        self.ticket = ticket
        self.weights = weights

    def __len__(self) -> int:
        return len(self.ids)

    def ticks(self, start: int, end: int) -> int:
        """The ticks records `start`..`end - 1` stand for."""
        if self.weights is None:
            return end - start
        return sum(self.weights[start:end])


class InFlight(Generic[T]):
    """The unconfirmed segments of one partition, oldest first; see the module docstring.

    `confirm` and `confirm_through` append each ticket whose last tick they confirmed to
    `finished` (its `remaining` is then 0) and return how many ticks they confirmed."""

    __slots__ = ("_done", "_early", "_segments", "ticks")

    def __init__(self) -> None:
        self._segments: deque[Segment[T]] = deque()
        self._done = 0  # records of the first segment confirmed already
        self._early: set[int] = set()  # confirmed ids with an unconfirmed id before them
        self.ticks = 0  # ticks in flight

    def __bool__(self) -> bool:
        return bool(self._segments)

    def __len__(self) -> int:
        """Records in flight."""
        return sum(map(len, self._segments)) - self._done

    def add(self, segment: Segment[T]) -> None:
        """Append records sent after everything already in flight (their ids above)."""
        if len(segment):
            self._segments.append(segment)
            self.ticks += segment.ticks(0, len(segment))

    def confirm(self, ids: Sequence[int], finished: list[T]) -> int:
        """The broker confirmed `ids` (one PublishConfirm frame's)."""
        segments = self._segments
        done = 0
        pos, count = 0, len(ids)
        while pos < count and segments:
            segment = segments[0]
            start = self._done
            take = min(len(segment) - start, count - pos)
            expected = segment.ids[start : start + take]
            got = ids if pos == 0 and take == count else ids[pos : pos + take]
            if not isinstance(got, list):
                got = list(got)
            if got != (list(expected) if isinstance(expected, range) else expected):
                break  # not the next run in order: one by one below
            done += self._advance(take, finished)
            pos += take
        if pos < count:
            return done + self._confirm_each(ids[pos:], finished)
        if self._early:
            done += self._catch_up(finished)
        return done

    def confirm_through(self, last: int, finished: list[T]) -> int:
        """Every record with an id up to `last` is stored (the broker's sequence after a
        reconnect): confirmed, and anything held out of order with it."""
        done = 0
        while self._segments:
            segment = self._segments[0]
            ids, start = segment.ids, self._done
            if isinstance(ids, range):
                upto = min(len(ids), max(start, last - ids.start + 1))
            else:
                upto = bisect.bisect_right(ids, last, lo=start)
            if upto == start:
                break
            done += self._advance(upto - start, finished)
        self._early = {pid for pid in self._early if pid > last}
        return done + self._catch_up(finished)

    def unconfirmed(self) -> Iterator[tuple[Segment[T], int]]:
        """Each segment with unconfirmed records and the index of its first one, in id order
        (what a re-send writes: records are re-sent as they were, under the same ids)."""
        start = self._done
        for segment in self._segments:
            yield segment, start
            start = 0

    def ticket_of(self, pid: int) -> T | None:
        """The ticket of the record with id `pid` while it is in flight (None: not in flight).
        In a segment of sub-entry batches under their last message's id (`weights` and a list
        of ids), a message id is in the first batch whose id is not below it."""
        start = self._done
        for segment in self._segments:
            ids = segment.ids
            if isinstance(ids, range):
                if pid in ids[start:]:
                    return segment.ticket
            else:
                at = bisect.bisect_left(ids, pid, lo=start)
                if at < len(ids) and (
                    ids[at] == pid
                    or (segment.weights is not None and not (start and ids[start - 1] >= pid))
                ):
                    return segment.ticket
            start = 0
        return None

    def clear(self) -> list[T]:
        """Forget everything in flight; returns the tickets that had ticks in it."""
        tickets = list({id(s.ticket): s.ticket for s in self._segments}.values())
        self._segments.clear()
        self._done = 0
        self._early.clear()
        self.ticks = 0
        return tickets

    def _advance(self, records: int, finished: list[T]) -> int:
        """Confirm the next `records` records in order; returns their ticks."""
        done = 0
        segments = self._segments
        while records:
            segment = segments[0]
            start = self._done
            take = min(records, len(segment) - start)
            ticks = segment.ticks(start, start + take)
            done += ticks
            ticket = segment.ticket
            ticket.remaining -= ticks
            if ticket.remaining == 0:
                finished.append(ticket)
            records -= take
            if start + take == len(segment):
                segments.popleft()
                self._done = 0
            else:
                self._done = start + take
        self.ticks -= done
        return done

    def _confirm_each(self, ids: Sequence[int], finished: list[T]) -> int:
        nxt = self._next_id()
        for pid in ids:
            if nxt is not None and pid >= nxt:
                self._early.add(pid)  # below the next unconfirmed id: a duplicate confirm
        return self._catch_up(finished)

    def _catch_up(self, finished: list[T]) -> int:
        """Confirm the records whose ids were confirmed out of order, once all before them
        are."""
        done = 0
        early = self._early
        while early:
            nxt = self._next_id()
            if nxt is None:
                early.clear()  # nothing in flight: stray ids
                break
            if nxt not in early:
                self._early = {pid for pid in early if pid > nxt}  # drop what was passed
                break
            early.discard(nxt)
            done += self._advance(1, finished)
        return done

    def _next_id(self) -> int | None:
        """The id of the first unconfirmed record (None: nothing in flight)."""
        if not self._segments:
            return None
        return self._segments[0].ids[self._done]
