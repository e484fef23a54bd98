"""Regenerate tests/data/routing_vectors.json: symbol -> MurmurHash3 x86_32 -> partition.

The hash is computed by the independent pure-Python MurmurHash3 x86_32 below (a transcription
of Austin Appleby's reference MurmurHash3_x86_32), cross-checked against the `mmh3` package
that `partitioning.router` uses and against published reference values; the script refuses to
write anything if they disagree. Partition = hash (unsigned) % n, for n = 1..16, with seed
104729 (the stream clients' hash routing seed).

Run: ``uv run python tests/data/make_routing_vectors.py`` (``--check`` only compares).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mmh3

SEED = 104729
MAX_PARTITIONS = 16
OUT = Path(__file__).with_name("routing_vectors.json")

SYMBOLS = [
    # US equities, share classes, ETFs, indices, futures, FX, crypto
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "GOOG", "META", "TSLA", "JPM", "V",
    "BRK.A", "BRK.B", "BF.B", "SPY", "QQQ", "IWM", "^GSPC", "^DJI", "^VIX", "^IXIC",
    "ES=F", "NQ=F", "CL=F", "GC=F", "EURUSD=X", "EUR/USD", "USD/JPY", "GBP/USD",
    "BTC-USD", "ETH-USD", "BTC/USDT", "RDS_A", "T", "F", "X", "A", "Z",
    "VOD.L", "SAP.DE", "7203.T", "0700.HK", "005930.KS", "RY.TO", "NESN.SW",
    "aapl", "0", "123456", "A-B_C.D/E^F=G",
    # non-ASCII: Japanese, Latin accents, Nordic, currency sign, Greek, Cyrillic, CJK, emoji
    "トヨタ", "ソニー", "Nestlé", "ÅBB", "Ørsted", "€STR", "£GILT", "Αθήνα",
    "Газпром", "腾讯", "삼성전자", "Straße", "🚀", "📈AAPL", "A\u0301",
]  # fmt: skip

# Published MurmurHash3_x86_32 values: (data, seed, hash).
REFERENCE = [
    (b"", 0, 0x00000000),
    (b"", 1, 0x514E28B7),
    (b"", 0xFFFFFFFF, 0x81F16F39),
    (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
    (b"aaaa", 0x9747B28C, 0x5A97808A),
    (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    (b"hello", 0, 0x248BFA47),
    (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
]

_MASK = 0xFFFFFFFF


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def murmur3_x86_32(data: bytes, seed: int) -> int:
    """MurmurHash3_x86_32 of `data` (unsigned), independent of the mmh3 package."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & _MASK
    nblocks = len(data) // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * c1) & _MASK
        k = _rotl32(k, 15)
        k = (k * c2) & _MASK
        h ^= k
        h = _rotl32(h, 13)
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[4 * nblocks :]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & _MASK
        k = _rotl32(k, 15)
        k = (k * c2) & _MASK
        h ^= k
    h ^= len(data)
    return _fmix32(h)


def build() -> list[dict[str, object]]:
    for data, seed, expected in REFERENCE:
        ours = murmur3_x86_32(data, seed)
        theirs = mmh3.hash(data, seed, signed=False)
        if not ours == theirs == expected:
            raise SystemExit(
                f"reference mismatch for {data!r} seed {seed:#x}: pure-Python {ours:#010x}, "
                f"mmh3 {theirs:#010x}, published {expected:#010x}"
            )
    if len(set(SYMBOLS)) != len(SYMBOLS):
        raise SystemExit("duplicate symbols in SYMBOLS")
    vectors: list[dict[str, object]] = []
    for symbol in SYMBOLS:
        data = symbol.encode("utf-8")
        h = murmur3_x86_32(data, SEED)
        if h != mmh3.hash(data, SEED, signed=False):
            raise SystemExit(f"mmh3 disagrees with the pure-Python hash for {symbol!r}")
        partitions = {str(n): h % n for n in range(1, MAX_PARTITIONS + 1)}
        vectors.append({"symbol": symbol, "murmur3": h, "partitions": partitions})
    return vectors


def render(vectors: list[dict[str, object]]) -> str:
    lines = [json.dumps(v, ensure_ascii=False, separators=(", ", ": ")) for v in vectors]
    return "[\n  " + ",\n  ".join(lines) + "\n]\n"


def main(argv: list[str]) -> int:
    text = render(build())
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: rerun {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{OUT.name} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(SYMBOLS)} vectors to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
