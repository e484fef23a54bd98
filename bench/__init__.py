"""Benchmark and verification harnesses.

:mod:`bench.verdict` judges whether a consumer saw every published tick exactly once and in order
per symbol. Its function ``verdict`` is deliberately not re-exported here: binding the name
``bench.verdict`` to the function would hide the submodule of the same name (``import
bench.verdict as m`` and ``mock.patch("bench.verdict....")`` would then get the function).
Import it from the submodule: ``from bench.verdict import verdict``.
"""

from bench.verdict import Verdict, VerdictBuilder

__all__ = [
    "Verdict",
    "VerdictBuilder",
]
