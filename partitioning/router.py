"""Which partition of the super stream a symbol's ticks go to.

The rule is the one of the RabbitMQ stream clients for Java, Go, .NET, Rust and the official JS
client (their hash routing strategy): MurmurHash3 x86_32 with seed 104729 over the UTF-8 bytes of
the routing key (here the symbol), read as an unsigned 32-bit integer, modulo the partition count.
Partition ``i`` is the i-th partition of the super stream in binding-key order (``ticks-i``).

Note: rstream 1.1.1's ``HashRoutingMurmurStrategy`` does NOT follow this rule (it hashes the
UTF-16 bytes with MurmurHash3 x64_128), so producers must route with this module instead.
"""

from __future__ import annotations

import mmh3

from superticks.errors import TickError

__all__ = ["ROUTING_SEED", "Router", "murmur3_32", "partition_for"]

ROUTING_SEED = 104729
"""The seed of the stream clients' hash routing strategy."""


def murmur3_32(data: bytes, seed: int = ROUTING_SEED) -> int:
    """MurmurHash3 x86_32 of `data`, as an unsigned 32-bit integer."""
    result: int = mmh3.hash(data, seed, signed=False)
    return result


def _check_partitions(partitions: int) -> None:
    if type(partitions) is not int or partitions < 1:
        raise ValueError(f"partitions={partitions!r}: must be an integer >= 1")


def partition_for(symbol: str, partitions: int) -> int:
    """The partition index (0 .. partitions-1) of `symbol`'s ticks."""
    _check_partitions(partitions)
    if not symbol:
        raise TickError(f"symbol={symbol!r}: must not be empty (it is the routing key)")
    return murmur3_32(symbol.encode(), ROUTING_SEED) % partitions


class Router:
    """Routes symbols for a fixed partition count, caching each symbol's partition."""

    __slots__ = ("_cache", "partitions")

    def __init__(self, partitions: int) -> None:
        _check_partitions(partitions)
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def route(self, symbol: str) -> int:
        """The partition index of `symbol` (a dict lookup once the symbol was seen)."""
        index = self._cache.get(symbol)
        if index is None:
            index = self._cache[symbol] = partition_for(symbol, self.partitions)
        return index

    def __repr__(self) -> str:
        return f"Router(partitions={self.partitions})"
