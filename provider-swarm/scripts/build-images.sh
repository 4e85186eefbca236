#!/usr/bin/env bash
# Builds, on the local Docker engine and FROM scratch, the images the Swarm
# provider's tests use and the gateway image for deploying into a swarm:
#
#   faas-rs/test-fn:TAG    static fwatchdog + faas-healthcheck, busybox's
#                          applets, and faas-testkit's conformance script as
#                          /conformance.sh (fork mode; fprocess defaults to cat)
#   faas-rs/test-http:TAG  the same plus a busybox httpd CGI server, mode=http
#   faas-rs/gateway:TAG    faas-gateway built with --features swarm
#
# Usage: provider-swarm/scripts/build-images.sh [TAG]   (TAG defaults to ci)
#
# Needs: docker, cargo, and Debian's busybox-static at /bin/busybox.
# The static binaries are built with RUSTFLAGS=-C target-feature=+crt-static
# in their own target dir ($FAAS_STATIC_TARGET_DIR, default
# $CARGO_TARGET_DIR-static) so that the flags do not invalidate the normal
# build cache. No registry is needed: nothing is pulled.
set -euo pipefail

tag=${1:-ci}
repo=$(cd "$(dirname "$0")/../.." && pwd)
crate=$repo/provider-swarm
normal_target=${CARGO_TARGET_DIR:-$repo/target}
static_target=${FAAS_STATIC_TARGET_DIR:-$normal_target-static}
triple=x86_64-unknown-linux-gnu
busybox=/bin/busybox
cd "$repo"

if [[ ! -x $busybox ]] || ldd "$busybox" >/dev/null 2>&1; then
    echo "build-images: $busybox is missing or not statically linked; install Debian's busybox-static" >&2
    exit 1
fi

echo "build-images: static fwatchdog, faas-healthcheck and faas-gateway (--features swarm)"
RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$static_target \
    cargo build --release --target "$triple" \
    -p faas-watchdog -p provider-swarm -p faas-gateway --features faas-gateway/swarm \
    --bin fwatchdog --bin faas-healthcheck --bin faas-gateway
bin=$static_target/$triple/release

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The function rootfs: binaries, busybox and one link per applet.
rootfs=$work/function/rootfs
mkdir -p "$rootfs/usr/bin" "$rootfs/bin" "$rootfs/tmp" "$rootfs/var/openfaas/secrets"
chmod 1777 "$rootfs/tmp"
cp "$bin/fwatchdog" "$bin/faas-healthcheck" "$rootfs/usr/bin/"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
done
CARGO_TARGET_DIR=$normal_target cargo run --quiet -p provider-swarm --example conformance-script \
    >"$rootfs/conformance.sh"
grep -q 'faas-testkit conformance function' "$rootfs/conformance.sh"
cp "$crate/images/function.Dockerfile" "$work/function/Dockerfile"

echo "build-images: faas-rs/test-fn:$tag"
docker build --quiet --tag "faas-rs/test-fn:$tag" "$work/function" >/dev/null

cp -r "$crate/images/http-fn/." "$rootfs/"
cp "$crate/images/http-function.Dockerfile" "$work/function/Dockerfile"
echo "build-images: faas-rs/test-http:$tag"
docker build --quiet --tag "faas-rs/test-http:$tag" "$work/function" >/dev/null

mkdir -p "$work/gateway"
cp "$bin/faas-gateway" "$work/gateway/"
cp "$crate/images/gateway.Dockerfile" "$work/gateway/Dockerfile"
echo "build-images: faas-rs/gateway:$tag"
docker build --quiet --tag "faas-rs/gateway:$tag" "$work/gateway" >/dev/null

docker image ls --filter "reference=faas-rs/*:$tag"
