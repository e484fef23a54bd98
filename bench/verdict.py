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
exactly when nothing was lost, duplicated, reordered or unexpected.

Memory: one bit per expected tick of each symbol that was seen at least once (a bytearray
bitmap allocated on its first sighting), so ten million ticks cost about 1.2 MB.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Verdict", "VerdictBuilder", "verdict"]


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
        """True when every published tick was seen exactly once, in order per symbol, and
        nothing else was seen."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.reordered == 0
            and self.unexpected == 0
            and self.received == self.expected
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
