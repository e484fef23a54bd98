"""The images the compose file runs: the configured or official ones, else ones built here.

For each image kind (RabbitMQ, Prometheus): the image docker-compose.yml resolves to
(`SUPERTICKS_RABBITMQ_IMAGE` / `SUPERTICKS_PROMETHEUS_IMAGE`, else the pinned official tag) when
the engine has it or can pull it; otherwise a local equivalent built from Debian's packages by
`cluster/scripts/build-image.sh` once and then reused (cached by tag).

The lag exporter's image (`SUPERTICKS_EXPORTER_IMAGE`, else `superticks/exporter:local`) holds
this project, so it is always built here (`cluster/scripts/build-exporter-image.sh`: wheels
made on the host, a Debian python base), and rebuilt only when the project's sources, lock file
or build recipe changed (a hash of them is the image's `org.superticks.source` label).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from superticks.errors import ClusterError
from superticks.settings import ClusterSettings

__all__ = [
    "EXPORTER_IMAGE",
    "IMAGE_KINDS",
    "ImageKind",
    "compose_images",
    "ensure_exporter_image",
    "ensure_images",
    "exporter_source_hash",
    "image_present",
]

SCRIPTS = Path(__file__).resolve().parent / "scripts"
REPO = Path(__file__).resolve().parents[1]
EXPORTER_IMAGE = "superticks/exporter:local"
_EXPORTER_INPUTS = ("pyproject.toml", "uv.lock", "cluster/exporter.Dockerfile")
_PACKAGES = ("superticks", "cluster", "partitioning", "workers", "bench", "monitoring")


@dataclass(frozen=True, slots=True)
class ImageKind:
    name: str  # rabbitmq | prometheus: build-image.sh's first argument
    env: str  # the variable docker-compose.yml interpolates
    services: tuple[str, ...]
    local_tag: str


IMAGE_KINDS = (
    ImageKind(
        "rabbitmq",
        "SUPERTICKS_RABBITMQ_IMAGE",
        ("rabbit1", "rabbit2", "rabbit3"),
        "superticks/rabbitmq:4-local",
    ),
    ImageKind(
        "prometheus", "SUPERTICKS_PROMETHEUS_IMAGE", ("prometheus",), "superticks/prometheus:local"
    ),
)


def image_present(image: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, check=False, timeout=30
    )
    return result.returncode == 0


def compose_images(settings: ClusterSettings) -> dict[str, str]:
    """service -> image, as docker-compose.yml resolves them (env interpolation included)."""
    result = subprocess.run(
        ["docker", "compose", "-f", str(settings.compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        raise ClusterError(f"docker compose cannot read {settings.compose_file}: {result.stderr}")
    services = json.loads(result.stdout).get("services", {})
    return {name: str(spec.get("image", "")) for name, spec in services.items()}


def _pull(image: str) -> bool:
    try:
        result = subprocess.run(
            ["docker", "pull", "-q", image], capture_output=True, check=False, timeout=600
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _ensure(kind: ImageKind, wanted: str, progress: Callable[[str], None]) -> str:
    if image_present(wanted) or _pull(wanted):
        return wanted
    local = kind.local_tag
    if image_present(local):
        progress(f"{wanted} cannot be pulled here; using the local build {local}")
        return local
    progress(f"{wanted} cannot be pulled here; building {local} from Debian's packages")
    result = subprocess.run(
        ["bash", str(SCRIPTS / "build-image.sh"), kind.name, local],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not image_present(local):
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise ClusterError(
            f"could not build the {kind.name} image {local}:\n{tail}\n"
            f"Set {kind.env} to an image this engine has."
        )
    return local


def ensure_images(
    settings: ClusterSettings, progress: Callable[[str], None] = print
) -> dict[str, str]:
    """{env variable: image} for every image kind, each present, pulled or built."""
    resolved = compose_images(settings)
    chosen: dict[str, str] = {}
    for kind in IMAGE_KINDS:
        wanted = {resolved[s] for s in kind.services if s in resolved}
        if len(wanted) != 1:
            raise ClusterError(f"expected one {kind.name} image in the compose file, got {wanted}")
        override = settings.rabbitmq_image if kind.name == "rabbitmq" else None
        chosen[kind.env] = _ensure(kind, override or wanted.pop(), progress)
    return chosen


def exporter_source_hash(repo: Path = REPO) -> str:
    """A hash of what the exporter's image is built from: the packages' Python files, the
    project and lock files and the build recipe (a changed test or README rebuilds nothing)."""
    digest = hashlib.sha256()
    files = [repo / f for f in (*_EXPORTER_INPUTS, "cluster/scripts/build-exporter-image.sh")]
    files += sorted(p for pkg in _PACKAGES for p in (repo / pkg).rglob("*.py"))
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def _image_label(image: str, label: str) -> str | None:
    result = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{label}"}}}}',
            image,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_exporter_image(progress: Callable[[str], None] = print) -> str:
    """The lag exporter's image: `SUPERTICKS_EXPORTER_IMAGE` if set (used as is), else
    `superticks/exporter:local`, built (about 10 s; the first time, with its Debian base and
    the wheels, 1-3 min) unless it exists with the current sources' hash."""
    configured = os.environ.get("SUPERTICKS_EXPORTER_IMAGE")
    if configured:
        return configured
    if not (REPO / "pyproject.toml").is_file() or not (REPO / "uv.lock").is_file():
        raise ClusterError(
            "the lag exporter's image is built from a checkout of superticks (its wheels), and "
            "this is an installed package: set SUPERTICKS_EXPORTER_IMAGE to an image with "
            "superticks installed, or run `superticks monitor` on the host"
        )
    wanted = exporter_source_hash()
    if _image_label(EXPORTER_IMAGE, "org.superticks.source") == wanted:
        return EXPORTER_IMAGE
    progress(f"building the lag exporter's image {EXPORTER_IMAGE} from this project's wheels")
    result = subprocess.run(
        ["bash", str(SCRIPTS / "build-exporter-image.sh"), EXPORTER_IMAGE, wanted],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or _image_label(EXPORTER_IMAGE, "org.superticks.source") != wanted:
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise ClusterError(
            f"could not build the lag exporter's image {EXPORTER_IMAGE}:\n{tail}\n"
            "Set SUPERTICKS_EXPORTER_IMAGE to an image with superticks installed, or run "
            "`superticks monitor` on the host instead."
        )
    return EXPORTER_IMAGE
