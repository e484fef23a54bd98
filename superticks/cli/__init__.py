"""The `superticks` command: one module per command group, each registering its sub-commands
(`cluster`, `topology`, `produce`, `worker`, `consume`, `replay`, `bench`); nothing imports it."""

from superticks.cli.main import main

__all__ = ["main"]
