"""Benchmark and verification harnesses.

:mod:`bench.verdict` judges whether a consumer saw every published tick exactly once and in order
per symbol. Its function ``verdict`` is deliberately not re-exported here: binding the name
``bench.verdict`` to the function would hide the submodule of the same name (``import
bench.verdict as m`` and ``mock.patch("bench.verdict....")`` would then get the function).
Import it from the submodule: ``from bench.verdict import verdict``.

The harnesses behind `superticks bench ...`: :mod:`bench.publish` (producers side by side),
:mod:`bench.consume` (one worker vs RbFly), :mod:`bench.failover` (every fault as a scenario under a
live feed and a worker group), :mod:`bench.chaos` (random faults), :mod:`bench.filter` (what
stream filtering saves), :mod:`bench.monitor` (one poll of the lag exporter).
:mod:`bench.verify` reads a run back and judges both sides (`superticks verify`).
"""

from bench.consume import ConsumeBench, run_consume_bench
from bench.failover import SCENARIOS, FailoverResult, run_failover_bench, run_scenario
from bench.monitor import MonitorBench, run_monitor_bench
from bench.publish import PublishBench, run_publish_bench
from bench.verdict import Verdict, VerdictBuilder

__all__ = [
    "SCENARIOS",
    "ConsumeBench",
    "FailoverResult",
    "MonitorBench",
    "PublishBench",
    "Verdict",
    "VerdictBuilder",
    "run_consume_bench",
    "run_failover_bench",
    "run_monitor_bench",
    "run_publish_bench",
    "run_scenario",
]
