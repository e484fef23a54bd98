"""`whole_writes()`: standard output and error that never drop the tail of a long write.

With ``PYTHONUNBUFFERED=1`` (set on these machines, and common in containers and CI) Python's
``sys.stdout`` is a text layer straight over the raw file: a ``write`` of a string is one
``write(2)``, and a short count from it is ignored, the rest of the string lost. A blocking
write to a pipe comes back short when the process is interrupted after some bytes went in, and
libuv (under uvloop, every command's event loop) interrupts it: its io_uring ring signals task
work to the process (measured: after ``uvloop.new_event_loop()``, ``print`` of 300,000
characters to a pipe whose reader was 0.5 s late wrote 65,536 of them, the pipe's size, and
raised nothing). So ``superticks audit replay --json`` piped to a reader that was not yet
reading lost everything after its first 64 KiB (its JSON cut in two).

`whole_writes` puts a buffered layer between the text and the raw file when there is none: a
`io.BufferedWriter` writes again until all is written. It flushes at every newline, as the
unbuffered stream wrote each line at once.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO

__all__ = ["whole_writes"]


def _buffered(raw: io.RawIOBase, encoding: str, errors: str | None) -> TextIO:
    """Text over a `BufferedWriter` over `raw`, flushed at each newline."""
    return io.TextIOWrapper(
        io.BufferedWriter(raw), encoding=encoding, errors=errors, line_buffering=True
    )


def _whole(stream: TextIO) -> TextIO:
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(stream.buffer, io.RawIOBase):
        return stream  # buffered already (BufferedWriter writes again after a short count)
    # a raw file of its own on the same descriptor: the old stream (still sys.__stdout__,
    # maybe held by others) may be closed or collected without closing this one
    raw = io.FileIO(stream.fileno(), "w", closefd=False)
    return _buffered(raw, stream.encoding, stream.errors)


def whole_writes() -> None:
    """Make `sys.stdout` and `sys.stderr` write all of every write (see the module
    docstring); call once, before anything is printed."""
    sys.stdout = _whole(sys.stdout)
    sys.stderr = _whole(sys.stderr)
