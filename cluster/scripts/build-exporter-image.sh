#!/usr/bin/env bash
# Build the lag exporter's image from wheels made on this host (containers cannot reach PyPI).
# Usage: build-exporter-image.sh TAG SOURCE_HASH
#
# 1. the base: a minimal Debian bookworm with python3 (build-image.sh python), built once;
# 2. wheels: this project's (`uv build`) and its locked dependencies for CPython 3.11 on
#    manylinux (`uv export` + `pip download`), the latter cached per uv.lock in
#    ${XDG_CACHE_HOME:-~/.cache}/superticks/;
# 3. `docker build` (cluster/exporter.Dockerfile), labelled with SOURCE_HASH so an unchanged
#    project is never rebuilt (cluster/image.py compares it).
set -euo pipefail
tag="${1:?usage: build-exporter-image.sh TAG SOURCE_HASH}"
hash="${2:?usage: build-exporter-image.sh TAG SOURCE_HASH}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base="${SUPERTICKS_PYTHON_BASE_IMAGE:-superticks/python:local}"
say() { printf 'superticks image: %s\n' "$*" >&2; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
  bash "$here/build-image.sh" python "$base"
fi

ctx=$(mktemp -d /var/tmp/superticks-exporter.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/wheels"
cd "$repo"
uv build --quiet --wheel --out-dir "$ctx/wheels" .
uv export --quiet --frozen --no-dev --no-hashes --no-emit-project --no-header \
  --format requirements-txt -o "$ctx/requirements.txt"
lock=$(sha256sum uv.lock | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/superticks/wheels-$lock"
if [ ! -f "$cache/.complete" ]; then
  say "downloading the dependencies' wheels (CPython 3.11, manylinux) ..."
  rm -rf "$cache" && mkdir -p "$cache"
  arch=$(uname -m)
  platforms=()
  for p in manylinux_2_36 manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${p}_$arch")
  done
  if python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip); else pip=(uvx pip); fi
  "${pip[@]}" download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    "${platforms[@]}" -r "$ctx/requirements.txt" -d "$cache" >"$ctx/pip.log" 2>&1 \
    || { grep -v '^WARNING: Location' "$ctx/pip.log" | tail -20 >&2; exit 1; }
  touch "$cache/.complete"
fi
cp "$cache"/*.whl "$ctx/wheels/"
cp "$repo/cluster/exporter.Dockerfile" "$ctx/Dockerfile"
say "building $tag ..."
docker build --quiet --build-arg "BASE=$base" --label "org.superticks.source=$hash" \
  -t "$tag" "$ctx" >"$ctx/build.log" 2>&1 || { tail -20 "$ctx/build.log" >&2; exit 1; }
say "built $tag"
