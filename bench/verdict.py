"""The lossless verdict: did a consumer see every published tick exactly once, in order per symbol?

Pure bookkeeping, no I/O; tests and benchmarks share it.

The producer publishes, for each symbol, ``count`` ticks with sequence numbers ``0..count-1``.
A consumer reports the ``(symbol, sequence_number)`` pairs it saw, in the order it saw them.
Each sighting is classified exactly once:

``unexpected``
    the symbol was never expected, or the sequence number is outside ``0..count-1``.
    Such sightings take no further part (they neither duplicate nor reorder anything).
``duplicated``
    an expected pair that had already been seen.
``reordered``
    an expected pair seen for the first time, but after a higher sequence number of the same
    symbol had already been seen (per-symbol order broken). A tick that arrives late is counted
    here, not as lost.
otherwise
    an expected pair seen for the first time, in order.

``lost`` is the number of expected pairs never seen, and ``per_symbol_gaps`` lists them as
inclusive ``(first, last)`` ranges of sequence numbers. ``received`` counts every sighting, so
``received == expected - lost + duplicated + unexpected`` always holds, and the verdict is ok
exactly when something was expected and nothing was lost, duplicated, reordered or unexpected
(an empty run proves nothing, so it is not ok).

`judge_run` is the verdict of a whole run, both sides (`RunVerdict`): the stream read back
against what the producer sent and confirmed, and what the group's handlers handled (their
handled logs, `workers.handled`) against what the stream holds.

Memory: one bit per expected tick of each symbol that was seen at least once (a bytearray
bitmap allocated on its first sighting), so ten million ticks cost about 1.2 MB.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from partitioning.router import Router
from workers.handled import Handled

__all__ = [
    "CrashWindow",
    "RunVerdict",
    "StoredTick",
    "Verdict",
    "VerdictBuilder",
    "judge_run",
    "verdict",
]


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing what was published with what a consumer saw."""

    expected: int
    """Ticks published: the sum of the expected counts."""
    received: int
    """Sightings reported by the consumer, all of them (duplicates and unexpected included)."""
    lost: int
    """Expected ``(symbol, sequence_number)`` pairs never seen."""
    duplicated: int
    """Sightings of an expected pair that had already been seen."""
    reordered: int
    """First sightings of an expected pair after a higher sequence number of its symbol."""
    unexpected: int
    """Sightings of an unknown symbol or of a sequence number outside ``0..count-1``."""
    per_symbol_gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict, hash=False)
    """Symbol -> the inclusive ranges of sequence numbers never seen, ascending. Symbols with
    nothing missing are absent."""

    @property
    def ok(self) -> bool:
        """True when something was published and every published tick was seen exactly once,
        in order per symbol, and nothing else was seen (``received == expected`` follows)."""
        return (
            self.expected > 0
            and self.lost == 0
            and self.duplicated == 0
            and self.reordered == 0
            and self.unexpected == 0
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: every field, ``ok``, and the gaps as ``[first, last]`` lists."""
        return {
            "ok": self.ok,
            "expected": self.expected,
            "received": self.received,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "unexpected": self.unexpected,
            "per_symbol_gaps": {
                symbol: [[first, last] for first, last in ranges]
                for symbol, ranges in self.per_symbol_gaps.items()
            },
        }

    def summary(self) -> str:
        """One line, e.g. ``OK expected=1000 received=1000 lost=0 ...`` or ``FAIL ...`` followed by
        the symbols with gaps (at most five named)."""
        line = (
            f"{'OK' if self.ok else 'FAIL'} expected={self.expected} received={self.received}"
            f" lost={self.lost} duplicated={self.duplicated} reordered={self.reordered}"
            f" unexpected={self.unexpected}"
        )
        if self.per_symbol_gaps:
            shown = sorted(self.per_symbol_gaps)[:5]
            more = len(self.per_symbol_gaps) - len(shown)
            gaps = ", ".join(
                f"{symbol}:{len(self.per_symbol_gaps[symbol])} range(s)" for symbol in shown
            )
            line += f" gaps[{gaps}{f', +{more} more symbols' if more else ''}]"
        return line


class _Symbol:
    """Bookkeeping of one expected symbol."""

    __slots__ = ("count", "highest", "seen", "seen_bits")

    def __init__(self, count: int) -> None:
        self.count = count
        self.highest = -1
        """Highest sequence number seen so far (-1: none)."""
        self.seen = 0
        """Distinct sequence numbers seen."""
        self.seen_bits: bytearray | None = None
        """Bit ``n`` set when sequence number ``n`` was seen; allocated on the first sighting."""


def _new_bitmap(count: int) -> bytearray:
    """A bitmap for ``count`` sequence numbers, the padding bits of its last byte set (seen), so
    that a byte is 0xFF exactly when none of its sequence numbers is missing."""
    bits = bytearray((count + 7) // 8)
    if count % 8:
        bits[-1] = 0xFF & ~((1 << (count % 8)) - 1)
    return bits


_NOT_ALL_SEEN = re.compile(rb"[^\xff]+")


def _missing_ranges(bits: bytearray, count: int) -> list[tuple[int, int]]:
    """The inclusive ranges of the clear bits below ``count``, ascending."""
    ranges: list[tuple[int, int]] = []
    for match in _NOT_ALL_SEEN.finditer(bits):
        start = -1  # first sequence number of the open missing run, -1 when none is open
        for index in range(match.start(), match.end()):
            byte = bits[index]
            base = index * 8
            if byte == 0:
                if start < 0:
                    start = base
                continue
            for bit in range(8):
                if byte >> bit & 1:
                    if start >= 0:
                        ranges.append((start, base + bit - 1))
                        start = -1
                elif start < 0:
                    start = base + bit
        if start >= 0:  # the match is followed by a 0xFF byte or by the end of the bitmap
            ranges.append((start, min(match.end() * 8, count) - 1))
    return ranges


class VerdictBuilder:
    """Streaming form of :func:`verdict`: declare the expectations, feed sightings as they arrive,
    ask for the :class:`Verdict` at any time (it reflects the sightings so far)."""

    __slots__ = ("_duplicated", "_received", "_reordered", "_symbols", "_unexpected", "_unknown")

    def __init__(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._unknown: set[str] = set()
        self._received = 0
        self._duplicated = 0
        self._reordered = 0
        self._unexpected = 0

    def expect(self, symbol: str, count: int) -> None:
        """Declare that ``count`` ticks of ``symbol`` were published (sequence numbers
        ``0..count-1``). Each symbol is declared once, before any sighting of it: a sighting of an
        undeclared symbol has already been judged unexpected."""
        if count < 0:
            raise ValueError(f"expected count of {symbol!r} must be >= 0, got {count}")
        if symbol in self._symbols:
            raise ValueError(f"{symbol!r} is already expected ({self._symbols[symbol].count})")
        if symbol in self._unknown:
            raise ValueError(f"{symbol!r} was observed before expect(); declare symbols first")
        self._symbols[symbol] = _Symbol(count)

    def observe(self, symbol: str, seq: int) -> None:
        """Record that the consumer saw ``(symbol, seq)``, in this order relative to the other
        calls."""
        self._received += 1
        state = self._symbols.get(symbol)
        if state is None:
            self._unknown.add(symbol)
            self._unexpected += 1
            return
        if not 0 <= seq < state.count:
            self._unexpected += 1
            return
        bits = state.seen_bits
        if bits is None:
            bits = state.seen_bits = _new_bitmap(state.count)
        index = seq >> 3
        mask = 1 << (seq & 7)
        byte = bits[index]
        if byte & mask:
            self._duplicated += 1
            return
        bits[index] = byte | mask
        state.seen += 1
        if seq < state.highest:
            self._reordered += 1
        else:
            state.highest = seq

    def observe_many(self, observed: Iterable[tuple[str, int]]) -> None:
        """:meth:`observe` each pair, in order."""
        observe = self.observe
        for symbol, seq in observed:
            observe(symbol, seq)

    def result(self) -> Verdict:
        """The verdict on everything observed so far."""
        expected = 0
        lost = 0
        gaps: dict[str, list[tuple[int, int]]] = {}
        for symbol, state in self._symbols.items():
            expected += state.count
            missing = state.count - state.seen
            if not missing:
                continue
            lost += missing
            if state.seen_bits is None:
                gaps[symbol] = [(0, state.count - 1)]
            else:
                gaps[symbol] = _missing_ranges(state.seen_bits, state.count)
        return Verdict(
            expected=expected,
            received=self._received,
            lost=lost,
            duplicated=self._duplicated,
            reordered=self._reordered,
            unexpected=self._unexpected,
            per_symbol_gaps=gaps,
        )


def verdict(expected: Mapping[str, int], observed: Iterable[tuple[str, int]]) -> Verdict:
    """Judge ``observed`` (the ``(symbol, sequence_number)`` pairs a consumer saw, in the order it
    saw them) against ``expected`` (each symbol's published count). See the module docstring for
    how each sighting is classified."""
    builder = VerdictBuilder()
    for symbol, count in expected.items():
        builder.expect(symbol, count)
    builder.observe_many(observed)
    return builder.result()


# --- the verdict of a whole run: the stream and the handlers ---------------------------------
StoredTick = tuple[int, str, int]
"""``(offset, symbol, sequence_number)`` of one tick read back from a partition."""


@dataclass(frozen=True, slots=True)
class CrashWindow:
    """A worker the harness SIGKILLed (or froze with SIGSTOP) at `at_ns` (wall clock, ns).

    What it handled up to then beyond the offset the group had stored (`stored`, partition ->
    offset read just before the fault, -1: none) was never stored, so its successor handles it
    again: those repeats are the documented crash window, allowed. Anything it handles after
    `at_ns` is outside the window."""

    worker: str
    at_ns: int
    stored: Mapping[int, int] = field(default_factory=dict)

    def covers(self, first: Handled) -> bool:
        """Whether `first` (the earlier handling of a tick handled again) lies in the window."""
        return (
            first.worker == self.worker
            and first.at_ns <= self.at_ns
            and first.offset > self.stored.get(first.partition, -1)
        )


@dataclass(frozen=True)
class RunVerdict:
    """Both sides of a run. See `judge_run` for how each count is made."""

    sent: int
    """Ticks the producer sent (each symbol's sequence numbers 0..n-1)."""
    confirmed: int
    unknown: int
    """Sent but neither confirmed nor refused when the run ended: a bug."""
    stream: Verdict
    """The stream read back from the first offset, against what was sent."""
    misrouted: int
    """Stored ticks in another partition than the Java clients' murmur3 rule gives."""
    undecodable: int
    """Stored messages that are not ticks."""
    handled: int
    """Handlings recorded by the handlers (all of them)."""
    unhandled: int
    """Stored ticks no handler handled."""
    handled_twice_crash: int
    """Repeat handlings of ticks a killed or frozen worker had handled past its stored offset
    (the crash window: allowed)."""
    handled_twice_other: int
    """Every other repeat handling (0 expected)."""
    handler_reordered: int
    """Ticks handled for the first time after a later tick of their symbol."""
    handler_unexpected: int
    """Handlings of an offset the stream does not hold, or of another tick than it holds."""
    coverage: dict[str, bool] = field(default_factory=dict)
    """Whether each fault took effect (empty: the run injected none)."""
    worker_exits: dict[str, int | None] = field(default_factory=dict)
    """Exit statuses of the workers the run stopped with SIGTERM at its end (not those it
    killed): `superticks worker` then stores its offsets and exits 0, so anything else (a
    traceback, a worker that had to be killed, None: still running) is a failed worker."""

    @property
    def ok(self) -> bool:
        """Every check passed and every fault took effect. An empty run is not ok (the stream
        verdict needs something sent)."""
        return (
            self.unknown == 0
            and self.stream.ok
            and self.misrouted == 0
            and self.undecodable == 0
            and self.unhandled == 0
            and self.handled_twice_other == 0
            and self.handler_reordered == 0
            and self.handler_unexpected == 0
            and all(self.coverage.values())
            and not self.bad_exits()
        )

    def bad_exits(self) -> dict[str, int | None]:
        """The workers of `worker_exits` that did not exit 0."""
        return {w: code for w, code in self.worker_exits.items() if code != 0}

    def failures(self) -> list[str]:
        """What failed, in words (empty when ok)."""
        out = []
        if self.unknown:
            out.append(f"{self.unknown} sends unknown (never confirmed)")
        if not self.stream.ok:
            out.append(f"stream: {self.stream.summary()}")
        for name in (
            "misrouted",
            "undecodable",
            "unhandled",
            "handled_twice_other",
            "handler_reordered",
            "handler_unexpected",
        ):
            if getattr(self, name):
                out.append(f"{name}={getattr(self, name)}")
        out.extend(f"coverage: {k} is false" for k, v in self.coverage.items() if not v)
        out.extend(
            f"worker {w} exited with status {code} when stopped (0 expected: see its log)"
            for w, code in self.bad_exits().items()
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (strict JSON: no infinities)."""
        return {
            "ok": self.ok,
            "failures": self.failures(),
            "sent": self.sent,
            "confirmed": self.confirmed,
            "unknown": self.unknown,
            "stored": self.stream.received,
            "lost": self.stream.lost,
            "duplicated": self.stream.duplicated,
            "reordered": self.stream.reordered,
            "unexpected": self.stream.unexpected,
            "misrouted": self.misrouted,
            "undecodable": self.undecodable,
            "handled": self.handled,
            "unhandled": self.unhandled,
            "handled_twice_crash": self.handled_twice_crash,
            "handled_twice_other": self.handled_twice_other,
            "handler_reordered": self.handler_reordered,
            "handler_unexpected": self.handler_unexpected,
            "coverage": dict(self.coverage),
            "worker_exits": dict(self.worker_exits),
        }

    def summary(self) -> str:
        """One line: OK/FAIL and the counts."""
        d = self.to_dict()
        counts = " ".join(f"{k}={d[k]}" for k in list(d)[2:-1])
        line = f"{'OK' if self.ok else 'FAIL'} {counts}"
        if self.coverage:
            line += " coverage[" + ", ".join(f"{k}={v}" for k, v in self.coverage.items()) + "]"
        return line


def judge_run(
    *,
    partitions: int,
    stored: Mapping[int, Sequence[StoredTick]],
    handled: Iterable[Handled],
    sent_per_symbol: Mapping[str, int],
    confirmed: int,
    undecodable: int = 0,
    crash_windows: Sequence[CrashWindow] = (),
    coverage: Mapping[str, bool] | None = None,
) -> RunVerdict:
    """Judge a run, both sides.

    * the stream: each partition's ticks read back from the first offset (`stored`, in offset
      order) against the producer's sends (`sent_per_symbol`: sequence numbers 0..n-1 of each
      symbol): lost, duplicated, reordered, unexpected (`Verdict`); ticks in the wrong
      partition (misrouted); `sent - confirmed` sends still unknown at the end;
    * the handlers: their handlings, ordered by the time they were handed over (ties: in the
      order given, which is each log's order): every stored tick handled at least once; each
      repeat handling of a ``(partition, offset)`` is in a crash window (`CrashWindow.covers`
      its first handling) or not; per symbol, first handlings in sequence order; a handling of
      an offset the stream does not hold, or of another tick than it holds, is unexpected;
    * `coverage`: whether each fault took effect (all must be true).
    """
    sent = sum(sent_per_symbol.values())
    stream = VerdictBuilder()
    for symbol, count in sent_per_symbol.items():
        stream.expect(symbol, count)
    router = Router(partitions)
    misrouted = 0
    index: dict[int, dict[int, int]] = {}
    for partition, ticks in stored.items():
        positions: dict[int, int] = {}
        for position, (offset, symbol, seq) in enumerate(ticks):
            stream.observe(symbol, seq)
            if router.route(symbol) != partition:
                misrouted += 1
            positions[offset] = position
        index[partition] = positions

    firsts: dict[int, list[Handled | None]] = {p: [None] * len(t) for p, t in stored.items()}
    order = VerdictBuilder()
    for symbol, count in sent_per_symbol.items():
        order.expect(symbol, count)
    handled_list = sorted(handled, key=lambda h: h.at_ns)  # stable: ties keep the log order
    unexpected = crash = other = 0
    for h in handled_list:
        found = index.get(h.partition, {}).get(h.offset)
        if found is None:
            unexpected += 1
            continue
        position = found
        _, symbol, seq = stored[h.partition][position]
        if (symbol, seq) != (h.symbol, h.sequence):
            unexpected += 1
            continue
        first = firsts[h.partition][position]
        if first is None:
            firsts[h.partition][position] = h
            order.observe(symbol, seq)
        elif any(w.covers(first) for w in crash_windows):
            crash += 1
        else:
            other += 1
    unhandled = sum(1 for slots in firsts.values() for first in slots if first is None)
    return RunVerdict(
        sent=sent,
        confirmed=confirmed,
        unknown=max(0, sent - confirmed),
        stream=stream.result(),
        misrouted=misrouted,
        undecodable=undecodable,
        handled=len(handled_list),
        unhandled=unhandled,
        handled_twice_crash=crash,
        handled_twice_other=other,
        handler_reordered=order.result().reordered,
        handler_unexpected=unexpected,
        coverage=dict(coverage or {}),
    )
