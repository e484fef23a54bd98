"""Argument types shared by the commands: each rejects bad input before anything starts, with
a message that names what was wrong (argparse turns it into exit status 2)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from superticks.errors import ConfigError

__all__ = [
    "add_run_options",
    "fault_target",
    "iso_time_us",
    "linger_ms",
    "name",
    "non_negative_int",
    "port",
    "positive_float",
    "positive_int",
    "rate",
    "stream_name",
    "symbol_list",
]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text}")
    return value


def port(text: str) -> int:
    """A TCP port to listen on (1-65535)."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (1-65535), not {text!r}")
    return int(text)


def _is_name(text: str) -> bool:
    return 0 < len(text) <= 200 and all(c.isascii() and (c.isalnum() or c in "._-") for c in text)


def stream_name(text: str) -> str:
    """A super stream or stream name: letters, digits, '.', '_' and '-' (1-200)."""
    if not _is_name(text):
        raise argparse.ArgumentTypeError(
            f"expected a stream name of letters, digits, '.', '_' or '-' (1-200 characters), "
            f"not {text!r}"
        )
    return text


def name(text: str) -> str:
    """A producer, worker or group name: letters, digits, '.', '_' and '-' (1-200); it names
    publishing ids, stored offsets and locks on the broker."""
    if not _is_name(text):
        raise argparse.ArgumentTypeError(
            f"expected a name of letters, digits, '.', '_' or '-' (1-200 characters), not {text!r}"
        )
    return text


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return value


def linger_ms(text: str) -> float:
    """Milliseconds from 0 to 1000 (the producer's `linger_ms`)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected milliseconds from 0 to 1000, not {text!r}")
    return value


def rate(text: str) -> float | None:
    """Ticks per second, or `max` (None: as fast as the cluster confirms)."""
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate takes a number or 'max', not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--rate must be > 0, not {text}")
    return value


def symbol_list(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("--symbols needs at least one symbol")
    return symbols


def iso_time_us(text: str) -> int:
    """Microseconds since the epoch of an ISO-8601 UTC time."""
    from partitioning.model import parse_timestamp_us

    try:
        return parse_timestamp_us(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 UTC time like 2026-11-25T14:30:00Z, not {text!r}"
        ) from None


def add_run_options(parser: argparse.ArgumentParser, run_dir_help: str) -> None:
    """The flags every fault run shares: where its logs go, whether its streams stay for
    `superticks verify`, and one strict JSON document."""
    parser.add_argument("--run-dir", type=Path, default=None, help=run_dir_help)
    parser.add_argument(
        "--keep-streams",
        action="store_true",
        help="keep the super stream(s) for `superticks verify --run DIR` (default: deleted)",
    )
    parser.add_argument("--json", action="store_true", help="one strict JSON document")


def fault_target(what: str, run_dir: Path | None, prefix: str) -> tuple[Any, Any, Path]:
    """(connection settings, the compose `Cluster`, the run directory) for a command that injects
    faults; refuses a `run_dir` that is not empty (ConfigError) and an external cluster
    (ChaosRefused) before anything starts."""
    import cluster as cl
    from superticks.settings import load_settings

    if run_dir is not None and run_dir.exists() and any(run_dir.iterdir()):
        # an earlier run's handled logs would be judged with this one's
        raise ConfigError(f"--run-dir {run_dir} is not empty: give each run a fresh directory")
    connection, cluster_settings = load_settings()
    target = cl.Cluster(cluster_settings, connection)
    target.refuse_external(what)
    return connection, target, run_dir or Path(tempfile.mkdtemp(prefix=prefix))
