"""The images the compose file runs: the configured or official ones, else ones built here.

For each image kind (RabbitMQ, Prometheus): the image docker-compose.yml resolves to
(`SUPERTICKS_RABBITMQ_IMAGE` / `SUPERTICKS_PROMETHEUS_IMAGE`, else the pinned official tag) when
the engine has it or can pull it; otherwise a local equivalent built from Debian's packages by
`cluster/scripts/build-image.sh` once and then reused (cached by tag).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from superticks.errors import ClusterError
from superticks.settings import ClusterSettings

__all__ = ["IMAGE_KINDS", "ImageKind", "compose_images", "ensure_images", "image_present"]

SCRIPTS = Path(__file__).resolve().parent / "scripts"


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
