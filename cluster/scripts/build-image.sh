#!/usr/bin/env bash
# Build an image from Debian's own packages, for hosts that cannot pull the official one
# (no Docker Hub). Usage: build-image.sh rabbitmq|prometheus|python TAG
#
# rabbitmq: Debian sid's rabbitmq-server (RabbitMQ 4.3 on Erlang 29: the current series, with
#   the single active consumer fixes that trixie's 4.0.5 lacks); paths as in the official image
#   (/etc/rabbitmq/rabbitmq.conf, /etc/rabbitmq/enabled_plugins, /var/lib/rabbitmq).
# prometheus: Debian bookworm's prometheus; entrypoint `prometheus` and data in /prometheus as
#   in prom/prometheus, so docker-compose.yml's `command:` suits either.
# python: Debian bookworm's python3 with venv (CPython 3.11): the lag exporter's base
#   (build-exporter-image.sh installs superticks into it from wheels).
# Nothing on the host changes but the debootstrap package and a scratch folder, removed after.
set -euo pipefail
kind="${1:?usage: build-image.sh rabbitmq|prometheus|python TAG}"
tag="${2:?usage: build-image.sh rabbitmq|prometheus|python TAG}"
case "$kind" in
  rabbitmq) suite="${SUPERTICKS_DEBIAN_SUITE:-sid}"; package=rabbitmq-server ;;
  prometheus) suite=bookworm; package=prometheus ;;
  python) suite=bookworm; package=python3-venv ;;
  *) echo "build-image.sh: unknown image kind $kind (rabbitmq, prometheus or python)" >&2; exit 2 ;;
esac
say() { printf 'superticks image: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "building the RabbitMQ image needs root (debootstrap); or set
SUPERTICKS_RABBITMQ_IMAGE to an image this Docker engine has or can pull"

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v debootstrap >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "debootstrap is needed to build the image (install it)"
  say "installing debootstrap ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /var/tmp/superticks-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
say "debootstrap $suite with $package (about 35 s) ..."
debootstrap --variant=minbase --include="$package" "$suite" "$root" "$(debian_mirror)" \
  >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "debootstrap failed (log above)"; }
rm -f "$root.log"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
version=$(chroot "$root" dpkg-query -W -f='${Version}' "$package")
say "importing as $tag ($package $version) ..."
if [ "$kind" = rabbitmq ]; then
  # Like the official image: the server runs in the foreground as PID 1, as user rabbitmq (so a
  # SIGTERM from `docker stop` reaches it), with its CLI tools on PATH for `docker exec`.
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV HOME=/var/lib/rabbitmq' \
    -c 'USER rabbitmq' \
    -c 'WORKDIR /var/lib/rabbitmq' \
    -c "LABEL org.superticks.version=$version org.superticks.debian-suite=$suite" \
    -c 'EXPOSE 4369 5552 5672 15672 15692 25672' \
    -c 'CMD ["rabbitmq-server"]' - "$tag" >/dev/null
elif [ "$kind" = python ]; then
  tar -C "$root" -c . | docker import \
    -c "LABEL org.superticks.version=$version org.superticks.debian-suite=$suite" \
    -c 'CMD ["python3"]' - "$tag" >/dev/null
else
  mkdir -p "$root/prometheus"
  chroot "$root" chown prometheus:prometheus /prometheus
  tar -C "$root" -c . | docker import \
    -c 'USER prometheus' \
    -c 'WORKDIR /prometheus' \
    -c "LABEL org.superticks.version=$version org.superticks.debian-suite=$suite" \
    -c 'EXPOSE 9090' \
    -c 'ENTRYPOINT ["/usr/bin/prometheus"]' \
    -c 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
    - "$tag" >/dev/null
fi
say "built $tag"
