"""Routing: MurmurHash3 x86_32 (seed 104729, unsigned) of the symbol's UTF-8 bytes, mod n."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from partitioning.router import ROUTING_SEED, Router, murmur3_32, partition_for
from superticks.errors import TickError

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS: list[dict[str, Any]] = json.loads((DATA / "routing_vectors.json").read_text("utf-8"))


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_routing_vectors", DATA / "make_routing_vectors.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_routing_seed_is_the_stream_clients_seed() -> None:
    assert ROUTING_SEED == 104729


@pytest.mark.parametrize(("data", "seed", "expected"), load_generator().REFERENCE)
def test_murmur3_32_matches_published_reference_values(
    data: bytes, seed: int, expected: int
) -> None:
    assert murmur3_32(data, seed) == expected


def test_murmur3_32_is_unsigned() -> None:
    assert murmur3_32(b"MSFT") == 2180592047  # > 2**31: would be negative if signed


def test_vectors_cover_ascii_and_non_ascii_symbols() -> None:
    symbols = [v["symbol"] for v in VECTORS]
    assert len(symbols) >= 60
    assert any(s.isascii() for s in symbols)
    assert any(not s.isascii() for s in symbols)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["symbol"])
def test_murmur3_32_matches_the_vectors(vector: dict[str, Any]) -> None:
    assert murmur3_32(vector["symbol"].encode("utf-8")) == vector["murmur3"]


@pytest.mark.parametrize("partitions", range(1, 17))
def test_partition_for_matches_the_vectors(partitions: int) -> None:
    for vector in VECTORS:
        assert partition_for(vector["symbol"], partitions) == vector["partitions"][str(partitions)]


@pytest.mark.parametrize("partitions", range(1, 17))
def test_router_matches_the_vectors(partitions: int) -> None:
    router = Router(partitions)
    for vector in VECTORS:
        assert router.route(vector["symbol"]) == vector["partitions"][str(partitions)]
        assert router.route(vector["symbol"]) == vector["partitions"][str(partitions)]  # cached


def test_worked_example_of_the_wire_format_doc() -> None:
    assert murmur3_32(b"AAPL") == 1718510165
    assert partition_for("AAPL", 3) == 1718510165 % 3 == 2


def test_the_vectors_file_is_what_the_generator_writes() -> None:
    generator = load_generator()
    assert generator.render(generator.build()) == (DATA / "routing_vectors.json").read_text("utf-8")


def test_the_generators_pure_python_hash_agrees_with_mmh3() -> None:
    generator = load_generator()
    for length in range(0, 40):
        data = bytes((i * 37 + length) % 256 for i in range(length))
        assert generator.murmur3_x86_32(data, ROUTING_SEED) == murmur3_32(data)


def test_partition_for_refuses_an_empty_symbol() -> None:
    with pytest.raises(TickError, match="symbol='': must not be empty"):
        partition_for("", 3)


@pytest.mark.parametrize("partitions", [0, -1])
def test_partition_for_refuses_fewer_than_one_partition(partitions: int) -> None:
    with pytest.raises(ValueError, match=f"partitions={partitions}: must be an integer >= 1"):
        partition_for("AAPL", partitions)


def test_router_refuses_fewer_than_one_partition() -> None:
    with pytest.raises(ValueError, match="partitions=0"):
        Router(0)


def test_router_refuses_an_empty_symbol() -> None:
    with pytest.raises(TickError):
        Router(3).route("")


def test_router_keeps_its_partition_count() -> None:
    assert Router(5).partitions == 5
