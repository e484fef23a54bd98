"""`whole_writes`: a long write to standard output is written whole even when the raw file
takes it in parts (a pipe write that libuv's io_uring interrupts comes back short)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from superticks.cli import stdio


class _Short(io.RawIOBase):
    """A raw file that takes at most 65,536 bytes a call, as an interrupted pipe write does."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        chunk = bytes(memoryview(b))[:65_536]  # type: ignore[arg-type]
        self.data += chunk
        return len(chunk)


def test_an_unbuffered_text_stream_drops_what_a_short_write_left() -> None:
    raw = _Short()
    unbuffered = io.TextIOWrapper(raw, write_through=True)  # type: ignore[arg-type]

    unbuffered.write("x" * 300_000)

    assert len(raw.data) == 65_536  # why whole_writes exists


def test_whole_writes_writes_all_of_a_long_write_through_short_raw_writes() -> None:
    raw = _Short()
    stream = stdio._buffered(raw, "utf-8", "strict")

    print("x" * 300_000, file=stream)

    assert bytes(raw.data) == b"x" * 300_000 + b"\n"  # flushed at the newline


def test_a_buffered_stream_is_left_as_it_is() -> None:
    stream = io.TextIOWrapper(io.BytesIO())
    assert stdio._whole(stream) is stream


def test_the_command_line_writes_whole_under_pythonunbuffered() -> None:
    code = (
        "from superticks.cli.stdio import whole_writes; whole_writes(); import sys; "
        "print(type(sys.stdout.buffer).__name__, type(sys.stderr.buffer).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ).stdout
    assert out.split() == ["BufferedWriter", "BufferedWriter"]
