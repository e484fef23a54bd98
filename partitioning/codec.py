"""The wire format of a tick, and the fast paths that produce and read it.

A tick travels as one AMQP 1.0 message (the bytes RabbitMQ Streams stores), made of:

1. a ``properties`` section whose only field is ``content-type = application/json`` (a symbol);
2. an ``application-properties`` section: ``{"symbol": <symbol>, "schema_version": "1"}`` (all
   strings: some clients mishandle int, float, empty or zero values);
3. one ``data`` section holding the body: compact UTF-8 JSON with exactly the keys of
   `partitioning.model.WIRE_FIELDS`; decimals as JSON strings, the timestamp as
   ``2026-11-25T14:03:07.123456Z``, ``sequence_number`` and ``version`` as JSON integers.

Producer side: `format_body` builds a body from already formatted strings (no validation, no
Decimal) and `frame_message` wraps it with a cached per-symbol prefix, in one concatenation.
Consumer side: `decode_body` parses with orjson and checks every rule of `MarketData` by hand,
handing anything it cannot vouch for to the model itself (which accepts it or says what is
wrong), so it accepts exactly what `MarketData.from_bytes` accepts; `decode_messages` reads a
whole chunk's bodies with one msgspec call into typed structs, then checks them the same way.
`split_message` reads any AMQP 1.0 message a Java, Go, .NET or JS producer may send;
`decode_message` recognises our own layout without the general parser. See docs/wire-format.md.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Final

import msgspec
import orjson

from partitioning.model import (
    MAX_DECIMAL_CHARS,
    MAX_SEQUENCE_NUMBER,
    MICROS_DIGITS,
    MILLIS_PREFIXES,
    SCHEMA_VERSION,
    WIRE_FIELDS,
    MarketData,
    check_symbol,
    format_timestamp_us,
    millis_prefix,
    parse_timestamp_us,
    us_to_timestamp,
)
from superticks.errors import DecodeError

__all__ = [
    "CONTENT_TYPE",
    "OWN_LAYOUT",
    "SCHEMA_VERSION",
    "Tick",
    "data_header",
    "decode_body",
    "decode_message",
    "decode_messages",
    "decode_numbered",
    "encode_body",
    "encode_message",
    "format_body",
    "frame_message",
    "message_body",
    "message_prefix",
    "message_prefix_with",
    "reframe_with",
    "split_message",
]

CONTENT_TYPE: Final = "application/json"

_CACHE_LIMIT = 65_536
_loads = orjson.loads
_U32 = struct.Struct(">I")

# -- producing bodies --------------------------------------------------------------------------

_JSON_STRINGS: dict[str, str] = {}


def _json_string(text: str) -> str:
    encoded = orjson.dumps(text).decode()
    if len(_JSON_STRINGS) >= _CACHE_LIMIT:
        _JSON_STRINGS.clear()
    _JSON_STRINGS[text] = encoded
    return encoded


def format_body(
    symbol: str,
    exchange: str,
    bid_price: str,
    bid_size: str,
    ask_price: str,
    ask_size: str,
    last_price: str,
    last_size: str,
    volume: str,
    timestamp_us: int,
    sequence_number: int,
) -> bytes:
    """The wire body of a tick from already formatted decimal strings (the producer's path).

    Nothing is validated: the decimal strings are written as given (they must be decimal
    notation such as ``"187.25"``); `symbol` and `exchange` are JSON-escaped (cached).
    Produces the same bytes as `encode_body` for the same values.
    """
    js = _JSON_STRINGS.get(symbol)
    if js is None:
        js = _json_string(symbol)
    je = _JSON_STRINGS.get(exchange)
    if je is None:
        je = _json_string(exchange)
    millis = timestamp_us // 1000
    prefix = MILLIS_PREFIXES.get(millis)
    if prefix is None:
        prefix = millis_prefix(millis)
    micros = MICROS_DIGITS[timestamp_us - millis * 1000]
    return (
        f'{{"symbol":{js},"exchange":{je},"bid_price":"{bid_price}","bid_size":"{bid_size}",'
        f'"ask_price":"{ask_price}","ask_size":"{ask_size}","last_price":"{last_price}",'
        f'"last_size":"{last_size}","volume":"{volume}","timestamp":"{prefix}{micros}Z",'
        f'"sequence_number":{sequence_number},"version":1}}'
    ).encode()


def encode_body(tick: MarketData) -> bytes:
    """The wire body of a validated tick (slower than `format_body`, same bytes)."""
    return tick.to_bytes()


# -- AMQP 1.0 framing --------------------------------------------------------------------------

_SEC_HEADER = 0x70
_SEC_DELIVERY_ANNOTATIONS = 0x71
_SEC_MESSAGE_ANNOTATIONS = 0x72
_SEC_PROPERTIES = 0x73
_SEC_APPLICATION_PROPERTIES = 0x74
_SEC_DATA = 0x75
_SEC_SEQUENCE = 0x76
_SEC_VALUE = 0x77
_SEC_FOOTER = 0x78
_SYMBOLIC_SECTIONS = {
    b"amqp:header:list": _SEC_HEADER,
    b"amqp:delivery-annotations:map": _SEC_DELIVERY_ANNOTATIONS,
    b"amqp:message-annotations:map": _SEC_MESSAGE_ANNOTATIONS,
    b"amqp:properties:list": _SEC_PROPERTIES,
    b"amqp:application-properties:map": _SEC_APPLICATION_PROPERTIES,
    b"amqp:data:binary": _SEC_DATA,
    b"amqp:amqp-sequence:list": _SEC_SEQUENCE,
    b"amqp:amqp-value:*": _SEC_VALUE,
    b"amqp:footer:map": _SEC_FOOTER,
}


def _section(code: int) -> bytes:
    return bytes((0x00, 0x53, code))


def _amqp_string(text: str, small: int = 0xA1, large: int = 0xB1) -> bytes:
    raw = text.encode()
    if len(raw) <= 255:
        return bytes((small, len(raw))) + raw
    return bytes((large,)) + _U32.pack(len(raw)) + raw


def _amqp_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    content = b"".join(k + v for k, v in pairs)
    count = 2 * len(pairs)
    if len(content) + 1 <= 255 and count <= 255:
        return bytes((0xC1, len(content) + 1, count)) + content
    return b"\xd1" + _U32.pack(len(content) + 4) + _U32.pack(count) + content


def _properties_section() -> bytes:
    # properties is a list of 13 fields; content-type is the 7th, trailing nulls are omitted.
    fields = b"\x40" * 6 + _amqp_string(CONTENT_TYPE, 0xA3, 0xB3)
    return _section(_SEC_PROPERTIES) + bytes((0xC0, len(fields) + 1, 7)) + fields


_PROPERTIES: Final = _properties_section()
_VERSION_PROPERTY: Final = (_amqp_string("schema_version"), _amqp_string(str(SCHEMA_VERSION)))
_PREFIXES: dict[str, bytes] = {}


def message_prefix(symbol: str) -> bytes:
    """The properties and application-properties sections of `symbol`'s messages (cached)."""
    prefix = _PREFIXES.get(symbol)
    if prefix is None:
        application = _amqp_map([(_amqp_string("symbol"), _amqp_string(symbol)), _VERSION_PROPERTY])
        prefix = _PROPERTIES + _section(_SEC_APPLICATION_PROPERTIES) + application
        if len(_PREFIXES) >= _CACHE_LIMIT:
            _PREFIXES.clear()
        _PREFIXES[symbol] = prefix
    return prefix


def message_prefix_with(symbol: str, extra: Sequence[tuple[str, str]]) -> bytes:
    """A tick message's prefix whose application properties also hold `extra` string pairs
    after ``symbol`` and ``schema_version`` (not cached; readers find the body through
    `split_message`)."""
    pairs = [(_amqp_string("symbol"), _amqp_string(symbol)), _VERSION_PROPERTY]
    pairs.extend((_amqp_string(k), _amqp_string(v)) for k, v in extra)
    return _PROPERTIES + _section(_SEC_APPLICATION_PROPERTIES) + _amqp_map(pairs)


def _data_header(size: int) -> bytes:
    if size <= 255:
        return bytes((0x00, 0x53, _SEC_DATA, 0xA0, size))
    return bytes((0x00, 0x53, _SEC_DATA, 0xB0)) + _U32.pack(size)


_DATA_HEADERS: Final = [_data_header(n) for n in range(4096)]


def data_header(size: int) -> bytes:
    """The header of a ``data`` section of `size` bytes (vbin8 up to 255, else vbin32)."""
    if 0 <= size < 4096:
        return _DATA_HEADERS[size]
    if not 0 <= size <= 0xFFFFFFFF:
        raise ValueError(f"a data section holds 0 .. 2**32-1 bytes, not {size}")
    return _data_header(size)


def frame_message(symbol: str, body: bytes) -> bytes:
    """The AMQP 1.0 message of one tick: ``prefix(symbol) + data_header(len(body)) + body``."""
    prefix = _PREFIXES.get(symbol)
    if prefix is None:
        prefix = message_prefix(symbol)
    size = len(body)
    if size < 4096:
        return prefix + _DATA_HEADERS[size] + body
    return prefix + data_header(size) + body


def encode_message(tick: MarketData) -> bytes:
    """The AMQP 1.0 message of a validated tick."""
    return frame_message(tick.symbol, tick.to_bytes())


# -- reading AMQP 1.0 --------------------------------------------------------------------------

_FIXED_WIDTH = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}
_INT_FORMATS = {
    0x50: ">B",
    0x51: ">b",
    0x60: ">H",
    0x61: ">h",
    0x70: ">I",
    0x71: ">i",
    0x80: ">Q",
    0x81: ">q",
    0x83: ">q",  # timestamp: ms since the epoch
    0x52: ">B",  # smalluint
    0x53: ">B",  # smallulong
    0x54: ">b",  # smallint
    0x55: ">b",  # smalllong
}
_STRING_CODES = {0xA1, 0xB1, 0xA3, 0xB3}
_SKIPPED = object()


def _need(buf: bytes, end: int) -> None:
    if end > len(buf):
        raise DecodeError(f"AMQP message truncated: needs {end} bytes, has {len(buf)}")


def _size_at(buf: bytes, pos: int, code: int) -> tuple[int, int]:
    """(size, position after the size) of a variable-width or compound value at `pos`."""
    if code >> 4 in (0xA, 0xC, 0xE):
        _need(buf, pos + 1)
        return buf[pos], pos + 1
    _need(buf, pos + 4)
    return _U32.unpack_from(buf, pos)[0], pos + 4


def _skip(buf: bytes, pos: int) -> int:
    """Position after the (possibly described) value at `pos` (no recursion: compound values
    are skipped by their size)."""
    _need(buf, pos + 1)
    while buf[pos] == 0x00:  # described: skip the descriptor, then read on
        _need(buf, pos + 2)
        if buf[pos + 1] == 0x00:
            raise DecodeError(f"AMQP descriptor at byte {pos + 1} is itself described")
        pos = _skip_primitive(buf, pos + 1)
        _need(buf, pos + 1)
    return _skip_primitive(buf, pos)


def _skip_primitive(buf: bytes, pos: int) -> int:
    code = buf[pos]
    pos += 1
    width = _FIXED_WIDTH.get(code >> 4)
    if width is not None:
        _need(buf, pos + width)
        return pos + width
    if code >> 4 in (0xA, 0xB, 0xC, 0xD, 0xE, 0xF):
        size, pos = _size_at(buf, pos, code)
        _need(buf, pos + size)
        return pos + size
    raise DecodeError(f"unknown AMQP type code 0x{code:02x} at byte {pos - 1}")


def _read(buf: bytes, pos: int) -> tuple[object, int]:
    """(value, next position) for strings, symbols, binaries, integers and booleans; other
    types are skipped and read as `_SKIPPED`."""
    _need(buf, pos + 1)
    code = buf[pos]
    if code in _STRING_CODES or code in (0xA0, 0xB0):
        size, start = _size_at(buf, pos + 1, code)
        end = start + size
        _need(buf, end)
        raw = buf[start:end]
        if code in (0xA0, 0xB0):
            return raw, end
        try:
            return raw.decode(), end
        except UnicodeDecodeError:
            raise DecodeError(f"AMQP string at byte {pos} is not UTF-8") from None
    fmt = _INT_FORMATS.get(code)
    if fmt is not None:
        end = pos + 1 + struct.calcsize(fmt)
        _need(buf, end)
        return struct.unpack_from(fmt, buf, pos + 1)[0], end
    if code in (0x41, 0x42):
        return code == 0x41, pos + 1
    if code == 0x56:
        _need(buf, pos + 2)
        return buf[pos + 1] != 0, pos + 2
    if code in (0x43, 0x44):
        return 0, pos + 1
    return _SKIPPED, _skip(buf, pos)


def _read_map(buf: bytes, pos: int) -> tuple[dict[str, str | int], int]:
    _need(buf, pos + 1)
    code = buf[pos]
    if code == 0x40:
        return {}, pos + 1
    if code not in (0xC1, 0xD1):
        raise DecodeError(f"application-properties is not a map (type 0x{code:02x})")
    size, start = _size_at(buf, pos + 1, code)
    end = start + size
    _need(buf, end)
    count_width = 1 if code == 0xC1 else 4
    count = buf[start] if code == 0xC1 else _U32.unpack_from(buf, start)[0]
    if count % 2:
        raise DecodeError(f"application-properties map has an odd element count ({count})")
    result: dict[str, str | int] = {}
    p = start + count_width
    for _ in range(count // 2):
        if p >= end:
            raise DecodeError("application-properties map holds fewer entries than it says")
        if buf[p] not in _STRING_CODES:
            raise DecodeError(f"application-properties key at byte {p} is not a string")
        key, p = _read(buf, p)
        value, p = _read(buf, p)
        if isinstance(value, str | int):
            result[str(key)] = value
    if p != end:
        raise DecodeError("application-properties map size does not match its content")
    return result, end


def _section_code(buf: bytes, pos: int) -> tuple[int, int]:
    """(section code, position of the section's value) of the described section at `pos`."""
    _need(buf, pos + 2)
    if buf[pos] != 0x00:
        raise DecodeError(f"byte {pos} does not start an AMQP section (0x{buf[pos]:02x})")
    code = buf[pos + 1]
    if code == 0x53:
        _need(buf, pos + 3)
        return buf[pos + 2], pos + 3
    if code == 0x80:
        _need(buf, pos + 10)
        return int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
    if code in (0xA3, 0xB3):
        name, after = _read(buf, pos + 1)
        symbolic = _SYMBOLIC_SECTIONS.get(str(name).encode())
        if symbolic is None:
            raise DecodeError(f"unknown AMQP section {name!r} at byte {pos}")
        return symbolic, after
    raise DecodeError(f"unknown AMQP section descriptor type 0x{code:02x} at byte {pos}")


def split_message(message: bytes | bytearray | memoryview) -> tuple[dict[str, str | int], bytes]:
    """(application properties, body) of an AMQP 1.0 message.

    Reads any section layout a Java, Go, .NET or JS client may send: header, annotations,
    properties and footer are skipped; application-properties keys may be str or symbol,
    string/symbol values are read as str, integer, boolean and timestamp values as int, others
    are left out; the body is the concatenation of all ``data`` sections, or an ``amqp-value``
    holding a binary or a string (UTF-8 encoded). Raises `DecodeError`.
    """
    buf = message if type(message) is bytes else bytes(message)
    pos = 0
    properties: dict[str, str | int] = {}
    chunks: list[bytes] = []
    value_body: bytes | None = None
    while pos < len(buf):
        section, pos = _section_code(buf, pos)
        if section == _SEC_APPLICATION_PROPERTIES:
            properties, pos = _read_map(buf, pos)
        elif section == _SEC_DATA:
            _need(buf, pos + 1)
            if buf[pos] not in (0xA0, 0xB0):
                raise DecodeError(f"data section at byte {pos} does not hold a binary")
            chunk, pos = _read(buf, pos)
            chunks.append(chunk)  # type: ignore[arg-type]
        elif section == _SEC_VALUE:
            code = buf[pos] if pos < len(buf) else -1
            if code not in (0xA0, 0xB0, 0xA1, 0xB1):
                raise DecodeError(
                    f"amqp-value section holds type 0x{code:02x}, not a binary or a string"
                )
            value, pos = _read(buf, pos)
            value_body = value.encode() if isinstance(value, str) else value  # type: ignore[assignment]
        elif section in (
            _SEC_HEADER,
            _SEC_DELIVERY_ANNOTATIONS,
            _SEC_MESSAGE_ANNOTATIONS,
            _SEC_PROPERTIES,
            _SEC_FOOTER,
        ):
            pos = _skip(buf, pos)
        elif section == _SEC_SEQUENCE:
            raise DecodeError("amqp-sequence bodies are not supported: send a data section")
        else:
            raise DecodeError(f"unknown AMQP section code 0x{section:x}")
    if chunks and value_body is not None:
        raise DecodeError("message has both data and amqp-value sections")
    if value_body is not None:
        return properties, value_body
    if not chunks:
        raise DecodeError("message has no body (no data or amqp-value section)")
    return properties, chunks[0] if len(chunks) == 1 else b"".join(chunks)


# our own layout: properties, then map8 {"symbol": str8, "schema_version": "1"}, then data
_OWN_HEAD: Final = _PROPERTIES + _section(_SEC_APPLICATION_PROPERTIES) + b"\xc1"
_OWN_SYMBOL_KEY: Final = b"\x04" + _amqp_string("symbol") + b"\xa1"
_OWN_TAIL: Final = b"".join(_VERSION_PROPERTY) + _section(_SEC_DATA)
_HEAD_LEN: Final = len(_OWN_HEAD)
_KEY_END: Final = _HEAD_LEN + 1 + len(_OWN_SYMBOL_KEY)
_TAIL_LEN: Final = len(_OWN_TAIL)
_MAP_SIZE_BASE: Final = len(_OWN_SYMBOL_KEY) + 1 + len(b"".join(_VERSION_PROPERTY))
OWN_LAYOUT: Final = (_OWN_HEAD, _OWN_SYMBOL_KEY, _OWN_TAIL, _MAP_SIZE_BASE)
"""Our layout's fixed parts, for a compiled reader (`workers._fold`): the bytes before the
application-properties map's size byte, those between it and the symbol's length byte, those
between the symbol and the data section's type code, and the map size less the symbol's length.
"""


_OWN_PREFIXES: set[bytes] = set()
"""Cache: message prefixes (up to the data section's type code) checked to be our layout."""


def _own_body(message: bytes) -> bytes | None:
    """The body if `message` has exactly the layout `frame_message` writes, else None."""
    if len(message) <= _KEY_END:
        return None
    end = _KEY_END + 1 + message[_KEY_END] + _TAIL_LEN
    head = message[:end]
    if head not in _OWN_PREFIXES and not _is_own_prefix(head):
        return None
    if end + 2 > len(message):
        return None
    code = message[end]
    if code == 0xA0:
        start = end + 2
        size = message[end + 1]
    elif code == 0xB0:
        start = end + 5
        if start > len(message):
            return None
        size = _U32.unpack_from(message, end + 1)[0]
    else:
        return None
    if start + size != len(message):
        return None
    return message[start:]


def _is_own_prefix(head: bytes) -> bool:
    """Whether `head` is the properties and application-properties of `frame_message`, plus
    the data section's descriptor (remembered when it is)."""
    if not head.startswith(_OWN_HEAD) or head[_HEAD_LEN + 1 : _KEY_END] != _OWN_SYMBOL_KEY:
        return False
    symbol_len = head[_KEY_END]
    if len(head) != _KEY_END + 1 + symbol_len + _TAIL_LEN or not head.endswith(_OWN_TAIL):
        return False
    if head[_HEAD_LEN] != _MAP_SIZE_BASE + symbol_len:
        return False
    try:
        head[_KEY_END + 1 : _KEY_END + 1 + symbol_len].decode()
    except UnicodeDecodeError:
        return False
    if len(_OWN_PREFIXES) >= _CACHE_LIMIT:
        _OWN_PREFIXES.clear()
    _OWN_PREFIXES.add(head)
    return True


_OWN_SYMBOLS: dict[bytes, str] = {}
"""Cache: heads of our layout (through the data section's descriptor) -> their symbol."""
_HEADS_WITH: dict[tuple[tuple[tuple[str, str], ...], str, int], dict[str, bytes]] = {}
"""Cache: (extra pairs but the last, the last key, its value's encoded size) -> symbol ->
`message_prefix_with` less the last value's encoding (the value changes, its size seldom)."""
_SYMBOL_AT: Final = _KEY_END + 1
_HEAD_BASE: Final = _KEY_END + 1 + _TAIL_LEN
"""Length of a head of our layout through the data section's descriptor, less the symbol's."""


def reframe_with(
    messages: Sequence[bytes], extra: Sequence[tuple[str, str]], number_from: int = 0
) -> tuple[list[tuple[int, str, bytes]], list[int]]:
    """Our layout's messages with `extra` string pairs added to their application properties.

    Returns ``(number_from + i, symbol, message)`` for each ``messages[i]`` of exactly the
    layout `frame_message` writes, where the new message is `message_prefix_with(symbol,
    extra)` followed by the original's data section, byte for byte (the body is neither
    decoded nor checked); and the indexes of the other messages (another client's layout), for
    the caller to read with `split_message`. One slice and one dict lookup per message.
    """
    symbols = _OWN_SYMBOLS
    base = _HEAD_BASE
    key_end = _KEY_END
    prefixes: dict[str, bytes] = {}
    if extra:
        last = _amqp_string(extra[-1][1])
        key = (tuple(extra[:-1]), extra[-1][0], len(last))
        heads = _HEADS_WITH.get(key)
        if heads is None:
            if len(_HEADS_WITH) >= 64:
                _HEADS_WITH.clear()
            heads = _HEADS_WITH[key] = {}
    else:
        last, heads = b"", _PREFIXES
    out: list[tuple[int, str, bytes]] = []
    add = out.append
    others: list[int] = []
    i = -1
    for m in messages:
        i += 1
        n = len(m)
        if n > key_end:
            end = base + m[key_end]  # the data section's type code, if ours
            head = m[:end]
            symbol = symbols.get(head)
            if symbol is None and _is_own_prefix(head):
                symbol = head[_SYMBOL_AT : _SYMBOL_AT + m[key_end]].decode()
                if len(symbols) >= _CACHE_LIMIT:
                    symbols.clear()
                symbols[head] = symbol
            if symbol is not None and n > end + 1:
                code = m[end]
                if (code == 0xA0 and end + 2 + m[end + 1] == n) or (
                    code == 0xB0 and n >= end + 5 and end + 5 + _U32.unpack_from(m, end + 1)[0] == n
                ):
                    prefix = prefixes.get(symbol)
                    if prefix is None:
                        start = heads.get(symbol)
                        if start is None:
                            start = message_prefix_with(symbol, extra)[: -len(last) or None]
                            if len(heads) >= _CACHE_LIMIT:
                                heads.clear()
                            heads[symbol] = start
                        prefix = prefixes[symbol] = start + last
                    add((number_from + i, symbol, prefix + m[end - 3 :]))
                    continue
        others.append(i)
    return out, others


def message_body(message: bytes) -> bytes:
    """The body of an AMQP 1.0 message: at once for the layout `frame_message` writes,
    through `split_message` for any other. Raises `DecodeError`."""
    body = _own_body(message)
    return split_message(message)[1] if body is None else body


def decode_message(message: bytes | bytearray | memoryview) -> Tick:
    """The validated tick in an AMQP 1.0 message; raises `DecodeError`."""
    if type(message) is not bytes:
        message = bytes(message)
    body = _own_body(message)
    if body is None:
        body = split_message(message)[1]
    return decode_body(body)


# -- decoding bodies ---------------------------------------------------------------------------


class Tick(msgspec.Struct, gc=False):
    """A decoded, validated tick as handlers see it.

    Decimal fields keep their exact wire strings (lossless; convert with `Decimal(...)` when
    arithmetic is needed), the timestamp is microseconds since the epoch (UTC).

    A `msgspec.Struct` (fields, positional and keyword construction, equality and ``repr``
    as a slotted dataclass's), built in C and not tracked by the cyclic garbage collector: a
    tick holds only strings and integers, so it never forms a cycle.
    """

    symbol: str
    exchange: str
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str
    last_price: str
    last_size: str
    volume: str
    timestamp_us: int
    sequence_number: int
    version: int

    @property
    def last_price_decimal(self) -> Decimal:
        """`last_price` as a Decimal."""
        return Decimal(self.last_price)

    @property
    def last_size_decimal(self) -> Decimal:
        """`last_size` as a Decimal."""
        return Decimal(self.last_size)

    @property
    def timestamp_iso(self) -> str:
        """The timestamp in its wire form, ``2026-11-25T14:03:07.123456Z``."""
        return format_timestamp_us(self.timestamp_us)

    def to_model(self) -> MarketData:
        """The same tick as a `MarketData` (validated again; raises `TickError`)."""
        return MarketData.build(
            symbol=self.symbol,
            exchange=self.exchange,
            bid_price=self.bid_price,
            bid_size=self.bid_size,
            ask_price=self.ask_price,
            ask_size=self.ask_size,
            last_price=self.last_price,
            last_size=self.last_size,
            volume=self.volume,
            timestamp=us_to_timestamp(self.timestamp_us),
            sequence_number=self.sequence_number,
            version=self.version,
        )


class _Slow(Exception):
    """The fast path cannot vouch for a body: let the model decide."""


_DECIMALS: dict[str, float] = {}
"""Cache: decimal strings the fast path trusts (see `_decimal_miss`) -> their floats."""
_POSITIVE: set[str] = set()
"""The `_DECIMALS` keys whose floats are > 0 ..."""
_NON_NEGATIVE: set[str] = set()
"""... and >= 0 (all three are cleared together)."""
_SYMBOLS: set[str] = set()
_MILLIS: dict[str, int] = {}
"""Cache: validated ``YYYY-MM-DDTHH:MM:SS.mmm`` -> microseconds since the epoch."""
_SUFFIX_MICROS: Final = {
    **{f"{n:03d}Z": n for n in range(1000)},
    **{f"{n:03d}+00:00": n for n in range(1000)},
    "Z": 0,
    "+00:00": 0,
}
"""What may follow a timestamp's millisecond (``456Z``, ``Z``, ...) -> its microseconds."""
_fields = operator.itemgetter(*WIRE_FIELDS)


def _decimal_miss(text: object, cache: bool = True) -> float:
    """The float of a decimal string the fast path may trust (cached); else raise _Slow.

    Trusted: ASCII decimal notation (float() then accepts exactly DECIMAL_RE) with a finite
    float; since float() rounds monotonically, its sign and order agree with the Decimal's,
    except for zeros, so '-'-prefixed strings rounding to 0.0 are not trusted.
    """
    if (
        type(text) is not str
        or len(text) > MAX_DECIMAL_CHARS
        or not text.isascii()
        or not text.isprintable()
        or " " in text
        or "_" in text
    ):
        raise _Slow
    value = float(text)
    if value - value != 0.0 or (value == 0.0 and text[0] == "-"):
        raise _Slow
    if cache:
        if len(_DECIMALS) >= _CACHE_LIMIT:
            _DECIMALS.clear()
            _POSITIVE.clear()
            _NON_NEGATIVE.clear()
        _DECIMALS[text] = value
        if value >= 0.0:
            _NON_NEGATIVE.add(text)
            if value > 0.0:
                _POSITIVE.add(text)
    return value


def _symbol_miss(symbol: object) -> None:
    try:
        check_symbol(symbol)
    except ValueError:
        raise _Slow from None
    if len(_SYMBOLS) >= _CACHE_LIMIT:
        _SYMBOLS.clear()
    _SYMBOLS.add(symbol)  # type: ignore[arg-type]


def _timestamp_miss(text: object) -> int:
    if type(text) is not str:
        raise _Slow
    micros = parse_timestamp_us(text)  # ValueError: the model says what is wrong
    if len(text) >= 24 and text[19] == "." and text[20:23].isdigit():
        if len(_MILLIS) >= 4096:
            _MILLIS.clear()
        _MILLIS[text[:23]] = micros - micros % 1000
    return micros


def decode_body(body: bytes | bytearray | memoryview | str) -> Tick:
    """The validated tick of a wire body; raises `DecodeError` naming the field and value.

    Accepts exactly what `MarketData.from_bytes` accepts (any decimal notation, ``Z`` or
    ``+00:00``, 0-9 fraction digits, keys in any order).
    """
    try:
        data = _loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not UTF-8 JSON: {exc}") from None
    try:
        return _decode_fast(data)
    except (_Slow, TypeError, ValueError, KeyError, AttributeError):
        return _decode_slow(data)


def _decode_fast(data: object) -> Tick:
    """The tick of a parsed body, checked by hand; raises _Slow (or TypeError, ValueError,
    KeyError, AttributeError) for anything it cannot vouch for, never for a valid tick of
    the common form."""
    if type(data) is not dict or len(data) != 12:
        raise _Slow
    (symbol, exchange, bp, bs, ap, az, lp, ls, vol, ts, seq, ver) = _fields(data)
    if type(exchange) is not str or not exchange:
        raise _Slow
    if type(seq) is not int or seq < 0 or seq > MAX_SEQUENCE_NUMBER:
        raise _Slow
    if type(ver) is not int or ver != SCHEMA_VERSION:
        raise _Slow
    return _checked_tick(symbol, exchange, bp, bs, ap, az, lp, ls, vol, ts, seq, ver)


def _decode_slow(data: object) -> Tick:
    """Validate with the model (which raises a DecodeError saying what is wrong)."""
    model = MarketData.from_wire_dict(data)
    wire: dict[str, str] = data  # type: ignore[assignment]  # validated: a dict of the fields
    return Tick(
        model.symbol,
        model.exchange,
        wire["bid_price"],
        wire["bid_size"],
        wire["ask_price"],
        wire["ask_size"],
        wire["last_price"],
        wire["last_size"],
        wire["volume"],
        model.timestamp_us,
        model.sequence_number,
        model.version,
    )


# -- decoding a chunk --------------------------------------------------------------------------

_OWN_LENGTHS: dict[bytes, int] = {}
"""Cache: heads of messages of our layout with a vbin8 data section, through its size byte
(`_own_body` said yes once) -> the whole message's length (the head, then that many bytes)."""
_HEAD_EXTRA: Final = _KEY_END + 1 + _TAIL_LEN + 1
"""Index of the vbin8 size byte of our layout's data section, less the symbol's length."""
_JOIN: Final = b",\n"
"""Joins a chunk's bodies into one JSON array. Its raw newline cannot stand inside a JSON
string, so no string spans two bodies (see `decode_messages`)."""


def decode_messages(
    messages: Sequence[bytes | bytearray | memoryview],
) -> tuple[list[Tick], list[tuple[int, ValueError]]]:
    """(ticks, errors) of a chunk: the ticks of the decodable messages in order, and
    (index, error) of the others, in index order.

    Accepts and refuses exactly what `decode_message` does, with the same errors, for less per
    message: bodies of our own layout with a vbin8 data section are found with one slice and
    one dict lookup (`_json_body` for the others); those shaped ``{...}`` with no other bracket
    are parsed together as one JSON array (an element is then exactly its body's value: see
    below), straight into typed structs by msgspec (`_checked_wires`; or into dicts by orjson
    when an element does not fit, `_checked_dicts`), and checked in one loop like
    `_decode_fast` (a checked struct becomes its `Tick` in place). Anything else, or anything
    those checks cannot vouch for, goes through `decode_message` / `decode_body` on its own.

    Why the array reads each body alone: every body starts with ``{`` and ends with ``}``,
    bodies are joined by ``,\\n``, the joined text has no ``[`` (so every container is an
    object) and the array must have one element per body. A string cannot hold the raw
    newline, so no string spans two bodies and no body's final ``}`` is inside a string. If a
    body ended inside an object, the next one (``,`` then ``{``, not a key) or the closing
    ``]`` would not parse; so each body ends at the top level, holds at least one element,
    and with as many elements as bodies holds exactly one: its own text, parsed alone.
    """
    known = _OWN_LENGTHS.get
    key_end = _KEY_END
    extra = _HEAD_EXTRA
    bodies: list[bytes] = []
    add_body = bodies.append
    alone: list[int] = []  # message indexes decoded on their own
    i = -1
    for m in messages:
        i += 1
        if type(m) is not bytes:
            m = bytes(m)
        try:
            h = extra + m[key_end]  # index of the data section's size byte, if ours
            if known(m[: h + 1]) == len(m) and m[h + 1] == 0x7B and m[-1] == 0x7D:
                add_body(m[h + 1 :])  # { ... }
                continue
        except IndexError:  # too short to be ours, or an empty body
            pass
        body = _json_body(m)
        if body is None:
            alone.append(i)
        else:
            add_body(body)

    where: Sequence[int]  # message index of each of `bodies`
    if alone:
        skipped = set(alone)
        where = [i for i in range(len(messages)) if i not in skipped]
    else:
        where = range(len(messages))
    ticks: list[Tick] = []
    errors: list[tuple[int, ValueError]] = []
    if bodies:
        joined = _JOIN.join(bodies)
        array = b"[" + joined + b"]"
        if b"[" in joined or not (
            _checked_wires(array, bodies, where, ticks, errors)
            or _checked_dicts(array, bodies, where, ticks, errors)
        ):
            alone.extend(where)
            alone.sort()
            where = []

    if not alone:
        return ticks, errors
    # the rare mixed chunk: decode the rest on their own and merge by index
    failed = {index for index, _ in errors}
    merged = [
        (index, tick)
        for index, tick in zip([i for i in where if i not in failed], ticks, strict=True)
    ]
    for i in alone:
        try:
            merged.append((i, decode_message(messages[i])))
        except ValueError as exc:
            errors.append((i, exc))
    merged.sort(key=_first)
    errors.sort(key=_first)
    return [tick for _, tick in merged], errors


def decode_numbered(
    first_offset: int, messages: Sequence[bytes | bytearray | memoryview]
) -> tuple[Sequence[int], list[Tick], list[tuple[int, ValueError]]]:
    """`decode_messages` of a chunk whose messages are numbered from `first_offset`:
    (offsets of the decoded ticks, the ticks, (offset, error) of the others), in offset order.
    The one chunk decode the worker, the plain reader and replay share."""
    ticks, errors = decode_messages(messages)
    if not errors:
        return range(first_offset, first_offset + len(messages)), ticks, []
    failed = {i for i, _ in errors}
    offsets = [first_offset + i for i in range(len(messages)) if i not in failed]
    return offsets, ticks, [(first_offset + i, exc) for i, exc in errors]


def _json_body(message: bytes) -> bytes | None:
    """The body of `message` if it has exactly our layout (`_own_body`) and is shaped
    ``{...}``, else None; a vbin8 head is remembered in `_OWN_LENGTHS`."""
    body = _own_body(message)
    if body is None or body[:1] != b"{" or body[-1:] != b"}":
        return None
    h = _HEAD_EXTRA + message[_KEY_END]
    if message[h - 1] == 0xA0:
        if len(_OWN_LENGTHS) >= _CACHE_LIMIT:
            _OWN_LENGTHS.clear()
        _OWN_LENGTHS[message[: h + 1]] = len(message)
    return body


class _WireTick(Tick, rename={"timestamp_us": "timestamp"}, forbid_unknown_fields=True, gc=False):
    """A body as `decode_messages` first reads it: exactly the keys of `WIRE_FIELDS` (any
    order; a repeated key keeps its last value, as orjson's dict does), with the JSON types
    and the integer ranges of the wire format checked in C. The decimals, the symbol and the
    timestamp (read into `timestamp_us` as the wire's text) are checked afterwards.

    A `Tick` with the same fields, so that a checked one becomes a `Tick` in place: its
    `timestamp_us` set to the microseconds and its class to `Tick` (the same memory layout,
    which CPython checks on the assignment)."""

    exchange: Annotated[str, msgspec.Meta(min_length=1)]
    timestamp_us: str  # type: ignore[assignment]
    sequence_number: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQUENCE_NUMBER)]
    version: Annotated[int, msgspec.Meta(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)]


_read_wires = msgspec.json.Decoder(list[_WireTick]).decode


def _checked_wires(
    array: bytes,
    bodies: list[bytes],
    where: Sequence[int],
    ticks: list[Tick],
    errors: list[tuple[int, ValueError]],
) -> bool:
    """The fast path of `decode_messages`: read `array` (the bodies as one JSON array) into
    `_WireTick`s and check each like `_decode_fast`, appending to `ticks` and `errors`; False
    (nothing appended) if the array is not one such object per body (then `_checked_dicts`
    decides).

    An element read here is the dict orjson would make of its body, typed: its strings and
    integers are the same values (both parsers are strict RFC 8259 with UTF-8 checks; orjson
    gives a float for an integer beyond 64 bits, which is out of range here anyway), and
    whatever does not fit `_WireTick` fails the whole array, to be parsed again by orjson."""
    try:
        wires = _read_wires(array)
    except msgspec.DecodeError:  # also ValidationError
        return False
    if len(wires) != len(bodies):  # a body holds two values
        return False
    add = ticks.append
    symbols = _SYMBOLS
    get = _DECIMALS.get
    positive = _POSITIVE
    sizes = _NON_NEGATIVE
    millis = _MILLIS.get
    suffix = _SUFFIX_MICROS.get
    max_chars = MAX_DECIMAL_CHARS
    tick_type = Tick
    j = -1
    for w in wires:
        j += 1
        # every string seen before and valid (the caches), in one test; else `_wire_tick`
        bp = w.bid_price
        ap = w.ask_price
        ts = w.timestamp_us
        vol = w.volume
        fbp = get(bp)
        fap = get(ap)
        base = millis(ts[:23])
        micros = suffix(ts[23:])
        if (
            fbp is not None
            and fap is not None
            and base is not None
            and micros is not None
            and w.symbol in symbols
            and fbp > 0.0
            # bid <= ask (floats are finite here: equal floats may hide bid > ask)
            and (fbp < fap or (fbp == fap and (bp == ap or Decimal(bp) <= Decimal(ap))))
            and w.last_price in positive
            and w.bid_size in sizes
            and w.ask_size in sizes
            and w.last_size in sizes
            and vol.isdigit()
            and vol.isascii()
            and len(vol) <= max_chars
        ):
            # the wire becomes its tick in place (see `_WireTick`)
            w.timestamp_us = base + micros  # type: ignore[assignment]
            w.__class__ = tick_type  # type: ignore[assignment]
            add(w)
            continue
        try:
            add(_wire_tick(w))
            continue
        except (_Slow, ValueError):
            pass
        try:
            add(decode_body(bodies[j]))
        except ValueError as exc:
            errors.append((where[j], exc))
    return True


def _wire_tick(w: _WireTick) -> Tick:
    """The tick of a `_WireTick` whose strings are not all in the caches: the checks of
    `_decode_fast` that msgspec did not make (caching what they learn); raises _Slow or
    ValueError for anything they cannot vouch for."""
    return _checked_tick(
        w.symbol,
        w.exchange,
        w.bid_price,
        w.bid_size,
        w.ask_price,
        w.ask_size,
        w.last_price,
        w.last_size,
        w.volume,
        w.timestamp_us,
        w.sequence_number,
        w.version,
    )


def _checked_tick(
    symbol: Any,
    exchange: Any,
    bp: Any,
    bs: Any,
    ap: Any,
    az: Any,
    lp: Any,
    ls: Any,
    vol: Any,
    ts: Any,
    seq: Any,
    ver: Any,
) -> Tick:
    """The tick of wire fields whose exchange, sequence number and version are checked: the
    symbol, prices > 0 with bid <= ask, sizes and volume >= 0, the timestamp, through the
    caches (filling them); raises _Slow (or TypeError, ValueError, AttributeError on odd
    types) for anything it cannot vouch for."""
    if symbol not in _SYMBOLS:
        _symbol_miss(symbol)
    get = _DECIMALS.get
    fbp = get(bp)
    if fbp is None:
        fbp = _decimal_miss(bp)
    fap = get(ap)
    if fap is None:
        fap = _decimal_miss(ap)
    flp = get(lp)
    if flp is None:
        flp = _decimal_miss(lp)
    f = get(bs)
    if f is None:
        f = _decimal_miss(bs)
    g = get(az)
    if g is None:
        g = _decimal_miss(az)
    k = get(ls)
    if k is None:
        k = _decimal_miss(ls)
    if not (
        fbp > 0.0
        and fap > 0.0
        and flp > 0.0
        and (fbp < fap or (fbp == fap and (bp == ap or Decimal(bp) <= Decimal(ap))))
        and f >= 0.0
        and g >= 0.0
        and k >= 0.0
        # volume grows forever, so it is never cached
        and (
            (vol.isdigit() and vol.isascii() and len(vol) <= MAX_DECIMAL_CHARS)
            or _decimal_miss(vol, cache=False) >= 0.0
        )
    ):
        raise _Slow
    # ...T14:03:07.123 seen before, then 456Z / Z / 456+00:00 / +00:00: two dict lookups
    base = _MILLIS.get(ts[:23])
    sub_ms = None if base is None else _SUFFIX_MICROS.get(ts[23:])
    micros = _timestamp_miss(ts) if base is None or sub_ms is None else base + sub_ms
    return Tick(symbol, exchange, bp, bs, ap, az, lp, ls, vol, micros, seq, ver)


def _checked_dicts(
    array: bytes,
    bodies: list[bytes],
    where: Sequence[int],
    ticks: list[Tick],
    errors: list[tuple[int, ValueError]],
) -> bool:
    """The general path of `decode_messages`: parse `array` (the bodies as one JSON array)
    with orjson into dicts and check each like `_decode_fast`, appending to `ticks` and
    `errors`; False (nothing appended) if the array does not parse into one value per body."""
    try:
        parsed = _loads(array)
    except orjson.JSONDecodeError:
        return False
    if type(parsed) is not list or len(parsed) != len(bodies):  # a body holds two values
        return False
    add = ticks.append
    fast = _decode_fast
    j = -1
    for data in parsed:
        j += 1
        try:  # anything the checks of `_decode_fast` cannot vouch for goes to `decode_body`
            tick: Tick | None = fast(data)
        except (_Slow, TypeError, ValueError, KeyError, AttributeError):
            tick = None
        if tick is None:
            try:
                tick = decode_body(bodies[j])
            except ValueError as exc:
                errors.append((where[j], exc))
                continue
        add(tick)

    return True


_first = operator.itemgetter(0)
