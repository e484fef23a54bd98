"""The RabbitMQ image the cluster runs: the configured or official one, else one built here.

Order: the image docker-compose.yml resolves to (`SUPERTICKS_RABBITMQ_IMAGE`, else the pinned
official tag) when the engine has it or can pull it; otherwise the locally built
`ClusterSettings.local_image`, built from Debian's RabbitMQ 4 packages by
`cluster/scripts/build-image.sh` once and then reused (cached by tag).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from superticks.errors import ClusterError
from superticks.settings import ClusterSettings

__all__ = ["compose_default_image", "ensure_image", "image_present"]

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def image_present(image: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, check=False, timeout=30
    )
    return result.returncode == 0


def compose_default_image(settings: ClusterSettings) -> str:
    """The image docker-compose.yml names (after `SUPERTICKS_RABBITMQ_IMAGE` interpolation)."""
    result = subprocess.run(
        ["docker", "compose", "-f", str(settings.compose_file), "config", "--images"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        raise ClusterError(f"docker compose cannot read {settings.compose_file}: {result.stderr}")
    images = sorted(set(result.stdout.split()))
    if len(images) != 1:
        raise ClusterError(f"expected one RabbitMQ image in the compose file, found {images}")
    return images[0]


def _pull(image: str) -> bool:
    try:
        result = subprocess.run(
            ["docker", "pull", "-q", image], capture_output=True, check=False, timeout=600
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def ensure_image(settings: ClusterSettings, progress: Callable[[str], None] = print) -> str:
    """Return an image name that the engine has, pulling or building as needed."""
    wanted = settings.rabbitmq_image or compose_default_image(settings)
    if image_present(wanted) or _pull(wanted):
        return wanted
    local = settings.local_image
    if image_present(local):
        progress(f"{wanted} cannot be pulled here; using the local build {local}")
        return local
    progress(f"{wanted} cannot be pulled here; building {local} from Debian's RabbitMQ 4 packages")
    result = subprocess.run(
        ["bash", str(SCRIPTS / "build-image.sh"), local],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not image_present(local):
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise ClusterError(
            f"could not build the RabbitMQ image {local}:\n{tail}\n"
            "Set SUPERTICKS_RABBITMQ_IMAGE to a RabbitMQ >= 4.0 image this engine has."
        )
    return local
