#!/bin/sh
# Runs the gitops-webhook of an unpacked image (a directory holding the image's root file
# system, from `podman export`) with nothing from the host: for machines where containers
# cannot run (crun refusing its cgroup or rlimit set-up), to show the image holds all it needs.
#
#   webhook/image/run-unpacked.sh [--mode chroot|loader] ROOT [gitops-webhook arguments...]
#
# chroot (the default as root): as a container runtime with readOnlyRootFilesystem would, in a
#   private mount namespace ROOT is bind-mounted read-only, an empty tmpfs owned by the image's
#   user is mounted on /tmp and on /var/cache/gitops-webhook (the Deployment's emptyDirs), and
#   the binary runs chrooted into ROOT as 65532:65532. Paths in arguments are inside ROOT.
# loader (the default otherwise): the image's own dynamic loader runs the binary with the
#   image's libraries only (--library-path, no ld.so.cache); paths are the host's.
#
# Either way the environment is emptied but for RUST_LOG and the image's SSL_CERT_FILE.
set -eu

mode=
if [ "${1:-}" = --mode ]; then mode=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: run-unpacked.sh [--mode chroot|loader] ROOT [args...]" >&2; exit 2; }
root=$(cd "$1" && pwd)
shift
if [ -z "$mode" ]; then
    if [ "$(id -u)" = 0 ]; then mode=chroot; else mode=loader; fi
fi
log=${RUST_LOG:-info}

case $mode in
chroot)
    # unshare replaces itself with sh, sh with chroot, chroot with the webhook: one process, so
    # killing it ends the webhook and its mount namespace with it.
    exec unshare --mount --propagation private sh -eu -c '
        root=$1; log=$2; shift 2
        mount --bind "$root" "$root"
        mount -o remount,bind,ro "$root"
        mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/tmp"
        mount -t tmpfs -o mode=0755,uid=65532,gid=65532,size=256m tmpfs "$root/var/cache/gitops-webhook"
        chroot=$(command -v chroot)
        exec env -i RUST_LOG="$log" SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
            "$chroot" --userspec=65532:65532 --groups= "$root" /usr/local/bin/gitops-webhook "$@"
    ' run-unpacked "$root" "$log" "$@"
    ;;
loader)
    loader=$(ls "$root"/lib64/ld-linux-*.so.* 2> /dev/null | head -n 1)
    [ -n "$loader" ] || { echo "run-unpacked.sh: no dynamic loader in $root/lib64" >&2; exit 1; }
    libraries=$(find "$root" -name '*.so*' -type f -exec dirname {} \; | sort -u | paste -sd: -)
    exec env -i RUST_LOG="$log" SSL_CERT_FILE="$root/etc/ssl/certs/ca-certificates.crt" \
        "$loader" --inhibit-cache --library-path "$libraries" "$root/usr/local/bin/gitops-webhook" "$@"
    ;;
*)
    echo "run-unpacked.sh: --mode is chroot or loader, not $mode" >&2
    exit 2
    ;;
esac
