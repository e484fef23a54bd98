"""The packages import one another in one direction only (docs/architecture.md):

* only `superticks/streams.py` imports rstream;
* `cluster` never imports `partitioning`, `workers` or `bench`;
* `partitioning` never imports `workers`, `bench` or `cluster`;
* `workers` never imports `trading`, `bench`, `cluster` or `monitoring`;
* `trading` (the data path's trading side) never imports `bench`, `cluster` or `monitoring`;
* `monitoring` imports only the adapter, settings, errors and partitioning's topology (never
  `workers`, `bench`, `cluster`), and the data path never imports `monitoring`;
* only `monitoring/dashboard.py` (the Streamlit script) imports streamlit;
* nothing but the CLI imports the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("superticks", "cluster", "partitioning", "workers", "trading", "bench", "monitoring")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _offenders(forbidden: tuple[str, ...], within: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules()
        if path.relative_to(ROOT).parts[0] == within
        for name in _imports(path)
        if name.split(".")[0] in forbidden
    ]


def test_only_the_adapter_imports_rstream() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if any(name.split(".")[0] == "rstream" for name in _imports(path))
    ]
    assert importers == ["superticks/streams.py"]


@pytest.mark.parametrize(
    ("within", "forbidden"),
    [
        ("cluster", ("partitioning", "workers", "trading", "bench", "monitoring")),
        ("partitioning", ("workers", "trading", "bench", "cluster", "monitoring")),
        ("workers", ("trading", "bench", "cluster", "monitoring")),
        ("monitoring", ("workers", "trading", "bench", "cluster")),
        ("trading", ("bench", "cluster", "monitoring")),
    ],
)
def test_packages_import_in_one_direction(within: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(forbidden, within) == []


def test_only_the_dashboard_script_imports_streamlit() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if any(name.split(".")[0] == "streamlit" for name in _imports(path))
    ]
    assert importers == ["monitoring/dashboard.py"]


def test_nothing_outside_the_cli_imports_it() -> None:
    entry = ROOT / "superticks" / "__main__.py"  # `python -m superticks`: the command itself
    importers = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if "cli" not in path.relative_to(ROOT).parts
        and path != entry
        and any(name.startswith("superticks.cli") for name in _imports(path))
    ]
    assert importers == []


def test_monitoring_takes_from_partitioning_only_its_topology() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules()
        if path.relative_to(ROOT).parts[0] == "monitoring"
        for name in _imports(path)
        if name.split(".")[0] == "partitioning" and name != "partitioning.topology"
    ]
    assert offenders == []
