#!/usr/bin/env bash
# Build the images the compose stacks run, with no container registry: a Debian base made
# by debootstrap, the project image on it, and a broker image with Debian's redis-server.
# The project's locked dependencies are downloaded as wheels on this host (pip, into
# compose/wheels/) and installed from there inside the build, which needs no network.
#
#   compose/build-images.sh            build what is missing (the project image: always, cached)
#   compose/build-images.sh --rebuild  build every image again from scratch
#
# Needs root (debootstrap), a running dockerd, debootstrap, uv on this host, Debian's
# package mirror reachable from this host and from containers (apt-get in the builds), and
# PyPI from this host.
# Prints each step's time. The tags it builds are the defaults of compose/.env.example:
#   BASE_IMAGE    stagger/debian:bookworm   (debootstrap --variant=minbase, docker import)
#   STAGGER_IMAGE stagger/harness:local     (compose/Dockerfile FROM BASE_IMAGE)
#   BROKER_IMAGE  stagger/redis:bookworm    (compose/broker.Dockerfile FROM BASE_IMAGE)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../../.."  # the checkout (this file: harness/shipped/compose/)

BASE_IMAGE="${BASE_IMAGE:-stagger/debian:bookworm}"
STAGGER_IMAGE="${STAGGER_IMAGE:-stagger/harness:local}"
BROKER_IMAGE="${BROKER_IMAGE:-stagger/redis:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
# The python3 of that Debian release: the wheels are chosen for it.
case "$SUITE" in
    bookworm) PYTHON_VERSION="${PYTHON_VERSION:-3.11.2}" ;;
    trixie) PYTHON_VERSION="${PYTHON_VERSION:-3.13.5}" ;;
    *) PYTHON_VERSION="${PYTHON_VERSION:?set PYTHON_VERSION to the python3 of $SUITE}" ;;
esac
WHEELS=compose/wheels
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REBUILD=0
NO_CACHE=()
case "${1:-}" in
    "") ;;
    --rebuild) REBUILD=1; NO_CACHE=(--no-cache) ;;
    *) echo "usage: $0 [--rebuild]" >&2; exit 2 ;;
esac

step() {  # step NAME COMMAND...: run it, then say how long it took
    local name="$1" start=$SECONDS
    shift
    echo "==> $name"
    "$@"
    echo "==> $name: $((SECONDS - start)) s"
}
present() { docker image inspect "$1" >/dev/null 2>&1; }

if ! docker info >/dev/null 2>&1; then
    echo "no Docker engine answers; start dockerd (Debian: apt-get install docker.io)" >&2
    exit 1
fi

base_image() {
    if ! type -P debootstrap >/dev/null; then
        echo "debootstrap is missing: apt-get install debootstrap" >&2
        return 1
    fi
    ROOTFS="$(mktemp -d)"
    trap 'rm -rf "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    tar -C "$ROOTFS" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$ROOTFS"
}

if [[ $REBUILD == 1 ]] || ! present "$BASE_IMAGE"; then
    step "base image $BASE_IMAGE (debootstrap $SUITE)" base_image
else
    echo "==> base image $BASE_IMAGE: present"
fi

if [[ $REBUILD == 1 ]] || ! present "$BROKER_IMAGE"; then
    step "broker image $BROKER_IMAGE" docker build --quiet --force-rm "${NO_CACHE[@]}" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$BROKER_IMAGE" -f compose/broker.Dockerfile compose
else
    echo "==> broker image $BROKER_IMAGE: present"
fi

# pip from uv (any Python on PATH, a project venv's too, may have no pip of its own).
PIP=(uvx --quiet --from pip pip)

wheels() {
    local minor_version="${PYTHON_VERSION%.*}" platforms=() minor
    local abi="cp${minor_version/./}"
    for minor in $(seq "${GLIBC_MINOR:-36}" -1 5); do
        platforms+=(--platform "manylinux_2_${minor}_x86_64")
    done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
    uv export --frozen --no-dev --group observe --no-emit-project --no-header --quiet -o "$WHEELS/requirements.txt.new"
    echo "uv==$(sed -n 's/^ARG UV_VERSION=//p' compose/Dockerfile)" >> "$WHEELS/requirements.txt.new"
    if cmp -s "$WHEELS/requirements.txt.new" "$WHEELS/requirements.txt" && [[ $REBUILD == 0 ]]; then
        rm "$WHEELS/requirements.txt.new"
        echo "wheels for uv.lock: present"
        return
    fi
    rm -f "$WHEELS"/*.whl
    # pip judges environment markers by this host's Python, not --python-version: keep the
    # requirements whose markers hold for the image's Python on Linux x86_64, without markers.
    grep -v '^uv==' "$WHEELS/requirements.txt.new" | uv run --quiet --no-project --with packaging python3 -c '
import re, sys
from packaging.markers import Marker
full = sys.argv[1]
target = {"python_full_version": full, "python_version": full.rsplit(".", 1)[0],
          "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "os_name": "posix", "implementation_name": "cpython",
          "platform_python_implementation": "CPython"}
for block in re.split(r"\n(?=\S)", sys.stdin.read()):
    head, sep, rest = block.partition(" \\\n")
    requirement, _, marker = head.partition(" ; ")
    if not marker or Marker(marker).evaluate(target):
        print(requirement + sep + rest)
' "$PYTHON_VERSION" > "$WHEELS/locked.txt"
    "${PIP[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$PYTHON_VERSION" --implementation cp --abi "$abi" "${platforms[@]}" \
        --require-hashes -r "$WHEELS/locked.txt" -d "$WHEELS" 2> >(grep -v "^WARNING: Location" >&2)
    "${PIP[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$PYTHON_VERSION" --implementation cp --abi "$abi" "${platforms[@]}" \
        "$(grep '^uv==' "$WHEELS/requirements.txt.new")" -d "$WHEELS" 2> >(grep -v "^WARNING: Location" >&2)
    rm "$WHEELS/locked.txt"
    mv "$WHEELS/requirements.txt.new" "$WHEELS/requirements.txt"
}
step "wheels for Python $PYTHON_VERSION (compose/wheels)" wheels

# The project image changes with the sources: always built, from the build cache when the
# locked dependencies did not change (a few seconds).
step "project image $STAGGER_IMAGE" docker build --quiet --force-rm "${NO_CACHE[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$STAGGER_IMAGE" -f compose/Dockerfile .
