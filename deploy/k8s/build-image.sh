#!/usr/bin/env bash
# Builds faas-rs/gateway:TAG for Kubernetes: faas-gateway with --features k8s,
# statically linked (-C target-feature=+crt-static on the gnu target), in an
# image FROM scratch. Load it into your cluster's nodes or push it to your
# registry, then `kubectl apply -f deploy/k8s/` (see docs/k8s.md).
#
# Usage: deploy/k8s/build-image.sh [TAG]   (TAG defaults to latest)
set -euo pipefail

tag=${1:-latest}
repo=$(cd "$(dirname "$0")/../.." && pwd)
normal_target=${CARGO_TARGET_DIR:-$repo/target}
static_target=${FAAS_STATIC_TARGET_DIR:-$normal_target-static}
triple=x86_64-unknown-linux-gnu
cd "$repo"

RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$static_target \
    cargo build --release --target "$triple" -p faas-gateway --features k8s --bin faas-gateway

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$static_target/$triple/release/faas-gateway" "$work/"
cp "$repo/deploy/k8s/gateway.Dockerfile" "$work/Dockerfile"
docker build --quiet --tag "faas-rs/gateway:$tag" "$work" >/dev/null
docker image ls --filter "reference=faas-rs/gateway:$tag"
