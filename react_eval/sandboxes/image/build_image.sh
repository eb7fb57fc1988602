#!/usr/bin/env bash
# Build the default sandbox image react-eval-sandbox:latest WITHOUT an image
# registry (idempotent; fast when nothing changed).
#
#   react-eval sandbox build-image                 # offline: debootstrap base
#   react-eval sandbox build-image --force         # rebuild the sandbox image
#   react-eval sandbox build-image --rebuild-base  # also redo debootstrap
#   BASE=python:3.12-slim react-eval sandbox build-image   # with a registry
# (in a checkout, `bash sandboxes/build_image.sh ...` runs this same script)
#
# Offline path:
#   1. react-eval-sandbox:latest exists with a matching label -> reuse, exit 0.
#   2. react-eval-base:bookworm exists with a matching label  -> reuse it.
#      else the cached rootfs tarball exists ($CACHE_DIR)      -> docker import it.
#      else debootstrap --variant=minbase (python3, pytest, git, patch, procps ...)
#           from the SAME Debian mirror the host's apt uses -> tarball -> import.
#   3. docker build --network none the Dockerfile beside this script FROM that base.
#
# Env knobs: IMAGE (else REACT_EVAL_SANDBOX_IMAGE, else react-eval-sandbox:latest), BASE (react-eval-base:bookworm),
#   SUITE (bookworm), REACT_EVAL_DEBIAN_MIRROR (auto from apt sources),
#   REACT_EVAL_CACHE_DIR (/var/cache/react-eval).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${IMAGE:-${REACT_EVAL_SANDBOX_IMAGE:-react-eval-sandbox:latest}}"
SUITE="${SUITE:-bookworm}"
DEFAULT_BASE="react-eval-base:${SUITE}"
BASE="${BASE:-$DEFAULT_BASE}"
CACHE_DIR="${REACT_EVAL_CACHE_DIR:-/var/cache/react-eval}"
# Everything the sandbox needs, baked into the base so the Dockerfile build
# needs no network. (minbase already has bash, coreutils, findutils, grep,
# sed, diffutils, tar, gzip, util-linux, apt.)
BASE_PACKAGES="python3,python3-pytest,python3-pip,python3-venv,git,patch,procps,psmisc,ca-certificates"
# bump when the rootfs recipe below changes
ROOTFS_RECIPE_VERSION=2

FORCE=0
REBUILD_BASE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --rebuild-base) FORCE=1; REBUILD_BASE=1 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

say() { echo "[build_image] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now() { date +%s; }
T0=$(now)

if ! { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }; then
    die "no Docker engine answers; start dockerd (Debian: apt-get install docker.io; in a checkout: bash sandboxes/ensure_docker.sh)"
fi

sha() { sha256sum | cut -c1-16; }
label_of() {  # image label
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

ROOTFS_KEY="$(printf '%s|%s|%s' "$SUITE" "$BASE_PACKAGES" "$ROOTFS_RECIPE_VERSION" | sha)"
if [ "$BASE" = "$DEFAULT_BASE" ]; then BASE_ID_KEY="$ROOTFS_KEY"; else BASE_ID_KEY="$BASE"; fi
DOCKERFILE_KEY="$( { cat "$HERE/Dockerfile"; echo "$BASE|$BASE_ID_KEY"; } | sha)"

# --- 1. reuse the finished image ---------------------------------------------
if [ "$FORCE" = 0 ] && [ "$(label_of "$IMAGE" react-eval.dockerfile-key)" = "$DOCKERFILE_KEY" ]; then
    say "$IMAGE is up to date (key $DOCKERFILE_KEY); nothing to do"
    exit 0
fi

# --- 2. the base image ---------------------------------------------------------
detect_mirror() {
    # First apt source URI serving "$SUITE" (deb822 *.sources or one-line *.list).
    local f uri
    if [ -n "${REACT_EVAL_DEBIAN_MIRROR:-}" ]; then echo "$REACT_EVAL_DEBIAN_MIRROR"; return; fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            function flush() { if (!done && uris != "" && (" " suites " ") ~ (" " suite " ") && types ~ /(^| )deb( |$)/) { split(uris, u, " "); print u[1]; uris=""; done=1; exit } uris=""; suites=""; types="" }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "uris:"   { $1=""; uris=$0 }
            tolower($1) == "suites:" { $1=""; suites=$0 }
            tolower($1) == "types:"  { $1=""; types=$0 }
            END { flush() }' "$f")"
        [ -n "$uri" ] && { echo "$uri" | tr -d ' '; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri="$(sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    echo "http://deb.debian.org/debian"
}

detect_security_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e '/^[[:space:]]*#/d' "$f" | grep -Eo 'https?://[^ ]*debian-security[^ ]*' | head -n1 | grep . && return
    done
    true
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] && return
    command -v apt-get >/dev/null 2>&1 || die "debootstrap missing and apt-get unavailable"
    say "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap debian-archive-keyring >/tmp/react-eval-apt.log 2>&1 \
        || { tail -n 20 /tmp/react-eval-apt.log >&2; die "apt-get install debootstrap failed"; }
}

ROOTFS_DIR=""
cleanup_rootfs() {
    [ -n "$ROOTFS_DIR" ] && [ -d "$ROOTFS_DIR" ] || return 0
    # unmount anything debootstrap left mounted inside (proc, sys, dev binds)
    # before deleting, so rm never walks into the host's /dev.
    cleanup_rootfs_mounts_only
    rm -rf --one-file-system "$ROOTFS_DIR"
}
trap cleanup_rootfs EXIT

make_rootfs_tarball() {  # $1 = output tarball
    local out="$1" mirror security t
    ensure_debootstrap
    mirror="$(detect_mirror)"
    security="$(detect_security_mirror || true)"
    mkdir -p "$CACHE_DIR/debs"
    ROOTFS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/react-eval-rootfs.XXXXXX")"
    chmod 755 "$ROOTFS_DIR"
    say "debootstrap $SUITE from $mirror into $ROOTFS_DIR (log: $CACHE_DIR/debootstrap.log)"
    t=$(now)
    if ! debootstrap --variant=minbase --components=main \
            --include="$BASE_PACKAGES" \
            --cache-dir="$CACHE_DIR/debs" \
            "$SUITE" "$ROOTFS_DIR" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 30 "$CACHE_DIR/debootstrap.log" >&2
        die "debootstrap failed (full log: $CACHE_DIR/debootstrap.log)"
    fi
    say "debootstrap done in $(( $(now) - t ))s"

    # apt inside the image points at the same (reachable) mirror
    rm -f "$ROOTFS_DIR/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$mirror" "$SUITE" "$SUITE"
        if [ -n "$security" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$security" "$SUITE"
        fi
    } >"$ROOTFS_DIR/etc/apt/sources.list.d/debian.sources"

    # keep it small: no docs, man pages, translations, apt lists or .deb cache
    cat >"$ROOTFS_DIR/etc/dpkg/dpkg.cfg.d/01-react-eval-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
    find "$ROOTFS_DIR/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$ROOTFS_DIR"/usr/share/man/* "$ROOTFS_DIR"/usr/share/info/* "$ROOTFS_DIR"/usr/share/locale/* \
           "$ROOTFS_DIR"/var/lib/apt/lists/* "$ROOTFS_DIR"/var/cache/apt/*.bin \
           "$ROOTFS_DIR"/var/cache/apt/archives/*.deb "$ROOTFS_DIR"/var/log/*.log \
           "$ROOTFS_DIR"/var/cache/debconf/*-old "$ROOTFS_DIR"/var/lib/dpkg/*-old
    : >"$ROOTFS_DIR/etc/resolv.conf"
    echo sandbox >"$ROOTFS_DIR/etc/hostname"

    cleanup_rootfs_mounts_only
    say "packing rootfs into $out"
    tar -C "$ROOTFS_DIR" --numeric-owner --one-file-system -cf "$out.tmp" .
    mv "$out.tmp" "$out"
    cleanup_rootfs
    ROOTFS_DIR=""
}

cleanup_rootfs_mounts_only() {  # deepest mount first
    local m
    awk -v d="$ROOTFS_DIR" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r |
        while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
}

ensure_base_image() {
    if [ "$REBUILD_BASE" = 0 ] && [ "$(label_of "$BASE" react-eval.rootfs-key)" = "$ROOTFS_KEY" ]; then
        say "reusing base image $BASE (key $ROOTFS_KEY)"
        return
    fi
    local tarball="$CACHE_DIR/rootfs-$SUITE-$ROOTFS_KEY.tar"
    mkdir -p "$CACHE_DIR"
    if [ "$REBUILD_BASE" = 1 ] || [ ! -s "$tarball" ]; then
        make_rootfs_tarball "$tarball"
        # drop tarballs of older recipes
        find "$CACHE_DIR" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -name "$(basename "$tarball")" -delete
    else
        say "using cached rootfs $tarball"
    fi
    say "docker import -> $BASE"
    OLD_BASE_ID="$(docker image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || true)"
    docker import \
        --change "LABEL react-eval.rootfs-key=$ROOTFS_KEY" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        "$tarball" "$BASE" >/dev/null
}

remove_if_dangling() {  # drop a superseded image if nothing uses it any more
    [ -n "$1" ] || return 0
    if [ -z "$(docker image inspect --format '{{join .RepoTags ","}}' "$1" 2>/dev/null)" ]; then
        docker rmi "$1" >/dev/null 2>&1 || true
    fi
}

NETWORK_ARGS=()
OLD_BASE_ID=""
if [ "$BASE" = "$DEFAULT_BASE" ]; then
    ensure_base_image
    NETWORK_ARGS=(--network none)   # everything is in the base: prove it
else
    say "using BASE=$BASE (needs a registry unless it is already local)"
fi

# --- 3. the sandbox image -------------------------------------------------------
say "docker build -> $IMAGE (FROM $BASE)"
t=$(now)
OLD_IMAGE_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# The legacy builder is used on purpose: it resolves FROM against local images
# without contacting a registry, and works with old (20.10) daemons.
DOCKER_BUILDKIT=0 docker build "${NETWORK_ARGS[@]}" \
    --build-arg "BASE=$BASE" \
    --label "react-eval.dockerfile-key=$DOCKERFILE_KEY" \
    -t "$IMAGE" -f "$HERE/Dockerfile" "$HERE" >"${TMPDIR:-/tmp}/react-eval-docker-build.log" 2>&1 \
    || { tail -n 30 "${TMPDIR:-/tmp}/react-eval-docker-build.log" >&2; die "docker build failed"; }
say "docker build done in $(( $(now) - t ))s"
remove_if_dangling "$OLD_IMAGE_ID"
remove_if_dangling "$OLD_BASE_ID"   # after the old sandbox image that used it

docker run --rm --network none "$IMAGE" sh -c 'python3 -c "import pytest" && git --version >/dev/null && command -v pkill >/dev/null && id -u sandbox >/dev/null' \
    || die "smoke test of $IMAGE failed"
say "$IMAGE ready ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $(( $(now) - T0 ))s"
