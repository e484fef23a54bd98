"""`superticks verify`: the verdict of a run, both sides (exit 1 when it fails)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from superticks.cli.loop import run

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "verify",
        help="judge a run: the stream read back and what the group's handlers handled",
        description=(
            "Read the run's super stream back from the first offset (lost, duplicated, "
            "reordered, misrouted per the Java clients' murmur3 rule, undecodable) and the "
            "handled logs of its `--handler verify` workers (every stored tick handled at "
            "least once, repeats inside and outside a killed worker's crash window, per-symbol "
            "order), against what the producer sent and had confirmed (unknown sends fail). "
            "RUN_DIR holds run.json and handled/ (written by `superticks bench failover` and "
            "`superticks chaos`). Exit 0: ok; 1: a check failed or a fault did not take "
            "effect; 2: bad input."
        ),
    )
    parser.add_argument("--run", type=Path, required=True, metavar="RUN_DIR")
    parser.add_argument("--json", action="store_true", help="strict JSON (no Infinity/NaN)")
    parser.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from bench.report import strict_json
    from bench.verify import verify_run
    from superticks.errors import ConfigError
    from superticks.settings import load_settings

    if not args.run.is_dir():
        raise ConfigError(f"--run {args.run}: not a directory")
    connection, _ = load_settings()
    verdict = run(verify_run(connection, args.run))
    if args.json:
        print(strict_json(verdict.to_dict()))
    else:
        print(verdict.summary())
        for failure in verdict.failures():
            print(f"  FAILED: {failure}")
    return 0 if verdict.ok else 1
