"""A deterministic market simulator: realistic ticks for the producer, benchmarks and tests.

Each symbol's bid does a random walk in whole cents, its spread is a few cents proportional to
its price, trades print at the bid or the ask in round lots, volume accumulates, and each symbol
has its own contiguous ``sequence_number`` from 0. Activity is Zipf-skewed (a few symbols are
hot), the exchange is drawn per tick and the clock advances by a few microseconds per tick (or
follows the wall clock with ``realtime=True``). Everything derives from ``random.Random(seed)``:
the same arguments give the same ticks.

`MarketSimulator.next_body` is the producer's hot path: it draws all of a tick's randomness from
one ``getrandbits`` call plus a pre-drawn block of symbol indices, keeps prices as integer cents
(formatted once per price level, no Decimal) and builds the body with `codec.format_body`.
"""

from __future__ import annotations

import math
import random
import string
import time
from collections.abc import Sequence
from itertools import accumulate

from partitioning.codec import format_body
from partitioning.model import MarketData, check_symbol, format_timestamp_us

__all__ = ["DEFAULT_EXCHANGES", "LARGE_CAPS", "MarketSimulator"]

DEFAULT_EXCHANGES = ("NYSE", "NASDAQ", "CBOE", "IEX", "ARCA")

LARGE_CAPS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "TSLA", "AVGO", "JPM",
    "LLY", "V", "UNH", "XOM", "MA", "JNJ", "PG", "HD", "COST", "ORCL",
    "MRK", "ABBV", "CVX", "KO", "PEP", "BAC", "WMT", "ADBE", "CRM", "NFLX",
    "AMD", "TMO", "MCD", "CSCO", "ACN", "ABT", "LIN", "DIS", "WFC", "INTC",
    "QCOM", "TXN", "DHR", "PM", "VZ", "IBM", "CAT", "GE", "AMGN", "NKE",
    "GS", "MS", "BA", "SBUX", "UBER", "PYPL", "T", "PFE", "MU", "BRK.A",
)  # fmt: skip
"""Real large-cap tickers, used first (hottest first) when symbols are generated."""

# 2026-11-25T14:30:00Z, the US open on the day the example ticks are dated.
DEFAULT_START_US = 1_795_617_000_000_000

_BLOCK = 1024
_FLOOR_CENTS = 100  # prices never walk below 1.00

# One tick's randomness is one 37-bit draw, cut into table indices:
#   bits 0-5 price step, 6-8 spread multiple, 9 trade side, 10-14 last size,
#   15-19 bid size, 20-24 ask size, 25-30 clock gap, 31-36 exchange.
_STEPS = (
    (-3,) * 1 + (-2,) * 4 + (-1,) * 12 + (0,) * 30 + (1,) * 12 + (2,) * 4 + (3,) * 1
)  # 64 entries, symmetric, roughly normal
_SPREAD_MULTIPLES = (1, 1, 1, 1, 2, 2, 3, 4)
_LOTS = (
    (100,) * 10 + (200,) * 6 + (300,) * 4 + (400,) * 3 + (500,) * 3 + (1000,) * 3
    + (1500, 2000, 5000)
)  # fmt: skip
"""32 round lots, small ones most common."""
_LOT_TEXT = tuple(str(n) for n in _LOTS)
_GAPS_US = tuple(int(-10.0 * math.log(1.0 - (j + 0.5) / 64)) for j in range(64))
"""Exponential inter-arrival times with a mean of about 10 us (about 100k ticks/s)."""

_PRICE_TEXT: dict[int, str] = {}


def _price_text(cents: int) -> str:
    text = f"{cents // 100}.{cents % 100:02d}"
    if len(_PRICE_TEXT) >= 200_000:
        _PRICE_TEXT.clear()
    _PRICE_TEXT[cents] = text
    return text


class MarketSimulator:
    """Generates ticks for `symbols` (a count, or the names) on `exchanges`.

    ``zipf_s`` sets the skew of activity: the symbol of rank ``k`` (0-based, in order) trades
    with weight ``1 / (k + 1) ** zipf_s``. ``start_timestamp_us`` defaults to a fixed instant
    (2026-11-25T14:30:00Z) so runs are reproducible; ``realtime=True`` uses the wall clock.
    """

    def __init__(
        self,
        symbols: int | Sequence[str],
        exchanges: Sequence[str] = DEFAULT_EXCHANGES,
        seed: int = 0,
        zipf_s: float = 1.1,
        start_timestamp_us: int | None = None,
        *,
        realtime: bool = False,
    ) -> None:
        self._rng = random.Random(seed)
        rng = self._rng
        names = _generate_symbols(symbols, rng) if isinstance(symbols, int) else list(symbols)
        _check_symbols(names)
        exchange_names = list(exchanges)
        if not exchange_names or not all(isinstance(e, str) and e for e in exchange_names):
            raise ValueError(f"exchanges={exchanges!r}: must be one or more non-empty names")
        if not zipf_s >= 0.0:
            raise ValueError(f"zipf_s={zipf_s!r}: must be >= 0")
        self.seed = seed
        self.zipf_s = zipf_s
        self.realtime = realtime
        self._symbols = names
        self._exchanges = tuple(exchange_names)
        count = len(names)
        self._cum_weights = list(accumulate(1.0 / (k + 1) ** zipf_s for k in range(count)))
        self._population = range(count)
        self._indices: list[int] = []
        # 64 exchange slots, each exchange about equally often
        self._exchange_slots = tuple(exchange_names[j % len(exchange_names)] for j in range(64))
        log_low, log_high = math.log(5.0), math.log(500.0)
        self._bid: list[int] = []
        self._unit: list[int] = []
        self._half_spread: list[int] = []
        for _ in range(count):
            cents = round(math.exp(rng.uniform(log_low, log_high)) * 100)
            self._bid.append(cents)
            self._unit.append(max(1, cents // 20_000))
            self._half_spread.append(max(1, cents // 20_000))
        self._seq = [0] * count
        self._volume = [0] * count
        if start_timestamp_us is None:
            start_timestamp_us = time.time_ns() // 1000 if realtime else DEFAULT_START_US
        self._clock = start_timestamp_us
        self._getrandbits = rng.getrandbits

    @property
    def symbols(self) -> list[str]:
        """The simulated symbols, hottest first."""
        return list(self._symbols)

    @property
    def exchanges(self) -> tuple[str, ...]:
        """The exchanges ticks are drawn from."""
        return self._exchanges

    @property
    def timestamp_us(self) -> int:
        """The clock: the timestamp of the last tick (or the start), us since the epoch."""
        return self._clock

    def _refill(self) -> None:
        self._indices = self._rng.choices(self._population, cum_weights=self._cum_weights, k=_BLOCK)

    def next_body(self) -> tuple[str, bytes]:
        """The next tick as (symbol, wire body): the producer's fast path."""
        indices = self._indices
        if not indices:
            self._refill()
            indices = self._indices
        i = indices.pop()
        r = self._getrandbits(37)
        bids = self._bid
        bid = bids[i] + _STEPS[r & 63] * self._unit[i]
        if bid < _FLOOR_CENTS:
            bid = _FLOOR_CENTS
        bids[i] = bid
        ask = bid + self._half_spread[i] * _SPREAD_MULTIPLES[(r >> 6) & 7]
        last = ask if r & 512 else bid
        lot = (r >> 10) & 31
        volume = self._volume[i] + _LOTS[lot]
        self._volume[i] = volume
        seq = self._seq[i]
        self._seq[i] = seq + 1
        if self.realtime:
            clock = max(self._clock, time.time_ns() // 1000)
        else:
            clock = self._clock + _GAPS_US[(r >> 25) & 63]
        self._clock = clock
        texts = _PRICE_TEXT
        bid_text = texts.get(bid) or _price_text(bid)
        ask_text = texts.get(ask) or _price_text(ask)
        symbol = self._symbols[i]
        return symbol, format_body(
            symbol,
            self._exchange_slots[r >> 31],
            bid_text,
            _LOT_TEXT[(r >> 15) & 31],
            ask_text,
            _LOT_TEXT[(r >> 20) & 31],
            ask_text if last == ask else bid_text,
            _LOT_TEXT[lot],
            str(volume),
            clock,
            seq,
        )

    def batch(self, n: int) -> list[tuple[str, bytes]]:
        """The next `n` ticks as (symbol, wire body) pairs."""
        next_body = self.next_body
        return [next_body() for _ in range(n)]

    def unstamped(self, n: int) -> list[tuple[str, bytes, bytes]]:
        """The next `n` ticks as (symbol, body before its timestamp's text, body after it), to
        be stamped as they are sent: ``head + format_timestamp_us(t).encode() + tail``. For
        benches that make their ticks before a timed window (2-3 us a tick here) and stamp
        each batch with the wall clock as it goes out."""
        cut = len(format_timestamp_us(self._clock))
        ticks = []
        for symbol, body in self.batch(n):
            at = body.rindex(b'Z","sequence_number":') + 1 - cut
            ticks.append((symbol, body[:at], body[at + cut :]))
        return ticks

    def next_tick(self) -> MarketData:
        """The next tick as a validated model (slow; for tests and examples)."""
        return MarketData.from_bytes(self.next_body()[1])


def _generate_symbols(count: int, rng: random.Random) -> list[str]:
    if count < 1:
        raise ValueError(f"symbols={count}: must be >= 1")
    names = list(LARGE_CAPS[:count])
    seen = set(LARGE_CAPS)
    letters = string.ascii_uppercase
    while len(names) < count:
        name = "".join(rng.choices(letters, k=rng.randint(3, 5)))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _check_symbols(names: list[str]) -> None:
    if not names:
        raise ValueError("symbols: needs at least one symbol")
    if len(set(names)) != len(names):
        raise ValueError("symbols: must be unique")
    for name in names:
        try:
            check_symbol(name)
        except ValueError as exc:
            raise ValueError(f"symbol={name!r}: {exc}") from None
