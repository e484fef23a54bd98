"""Builds `workers._fold` (workers/_fold.c, the worker's compiled VWAP fold) with the C compiler
Python itself was built with, into the source tree (editable installs) and the wheel.

Optional: without a compiler, the build goes on with a warning and the worker folds ticks in
Python (`workers.vwap`), slower but with identical results; `superticks worker --handler vwap`
warns that it does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("workers") / "_fold.c"


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compiles the extension; see the module docstring."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        target = SOURCE.with_name("_fold" + str(sysconfig.get_config_var("EXT_SUFFIX")))
        try:
            compile_extension(root / SOURCE, root / target)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(
                f"superticks: workers/_fold.c not compiled ({exc}): the worker folds ticks in "
                "Python, slower",
                file=sys.stderr,
            )
            return
        if version != "editable":
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            build_data["force_include"][str(root / target)] = str(target)


def compile_extension(source: Path, target: Path) -> None:
    """`source` compiled into the shared library `target` (rebuilt only when older)."""
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    temporary = target.with_name(target.name + ".tmp")
    subprocess.run(
        [
            *cc,
            "-O2",
            "-shared",
            "-fPIC",
            "-Wall",
            f"-I{include}",
            str(source),
            "-o",
            str(temporary),
        ],
        check=True,
    )
    temporary.replace(target)
