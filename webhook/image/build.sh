#!/bin/sh
# Builds the gitops-webhook image without pulling a base image: the binary is built on this
# host, and the image's root file system is assembled here from it, the shared libraries it
# links (as ldd resolves them), the CA bundle and a non-root user. webhook/Containerfile then
# copies that tree into an empty (`FROM scratch`) image.
#
#   webhook/image/build.sh [--binary PATH] [--tag TAG] [--context DIR] [--no-build]
#
#   --binary PATH   the gitops-webhook binary to ship (default: cargo build --release, then
#                   target/release/gitops-webhook)
#   --tag TAG       the image's name (default: localhost/gitops-webhook:dev)
#   --context DIR   where to assemble the build context (default: target/image-context)
#   --no-build      assemble the context only; print its path
#
# The engine is podman, else docker ($CONTAINER_ENGINE overrides). Only glibc hosts: the
# libraries copied are the host's, so the image runs what this host's glibc runs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
binary=
tag=localhost/gitops-webhook:dev
context=$repo/target/image-context
build=yes
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --context) context=$2; shift 2 ;;
        --no-build) build=no; shift ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "$binary" ]; then
    (cd "$repo" && cargo build --release --locked -p gitops-webhook)
    binary=$repo/target/release/gitops-webhook
fi
[ -x "$binary" ] || { echo "build.sh: $binary is not an executable" >&2; exit 2; }

rootfs=$context/rootfs
rm -rf "$context"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/etc/gitops-webhook" \
    "$rootfs/var/cache" "$rootfs/tmp" "$context/cache"
chmod 1777 "$rootfs/tmp"

# The binary, without its symbol tables and debug lines (a third of a release build's size).
cp "$binary" "$rootfs/usr/local/bin/gitops-webhook"
strip --strip-all "$rootfs/usr/local/bin/gitops-webhook"
chmod 0755 "$rootfs/usr/local/bin/gitops-webhook"

# Exactly the shared libraries the binary links, at the paths the loader looks them up
# (libssl, libcrypto and libz for libgit2, libgcc_s, libm, libc, and the loader itself).
ldd "$binary" > "$context/ldd.txt"
if grep -q 'not found' "$context/ldd.txt"; then
    echo "build.sh: a library the binary needs is missing on this host:" >&2
    grep 'not found' "$context/ldd.txt" >&2
    exit 1
fi
awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$context/ldd.txt" |
    while read -r library; do
        mkdir -p "$rootfs$(dirname "$library")"
        cp -L "$library" "$rootfs$library"
    done

# Trusted CAs for fetching from HTTPS Git remotes (Debian's ca-certificates package).
bundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$bundle" ] || { echo "build.sh: $bundle is missing (install ca-certificates)" >&2; exit 1; }
cp "$bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"

# The user the webhook runs as, and name lookups that read /etc/hosts before DNS (the kubelet
# writes both /etc/hosts and /etc/resolv.conf into the container).
cp "$here/passwd" "$here/group" "$here/nsswitch.conf" "$rootfs/etc/"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"

if [ "$build" = no ]; then
    echo "$context"
    exit 0
fi
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v podman > /dev/null; then engine=podman; else engine=docker; fi
fi
"$engine" build --file "$here/../Containerfile" --tag "$tag" "$context"
