#!/usr/bin/env bash
# Build the pinned Kubernetes node and control-plane binaries from the k8s.io/kubernetes Go module.
# `go install k8s.io/kubernetes/cmd/...@v` refuses the module's replace directives (its staging
# modules point at ./staging/src/...), so a small wrapper module requires k8s.io/kubernetes and points
# every k8s.io/* staging module at its published v0.x release instead.
# Usage: build-k8s.sh OUT_DIR   (K8S_VERSION overrides the pin). Idempotent: a complete OUT_DIR is kept.
set -euo pipefail
out=${1:?usage: build-k8s.sh OUT_DIR}
ver=${K8S_VERSION:-v1.32.13}
staging_ver="v0.${ver#v1.}"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
stamp="$out/.built-$ver"
if [ -f "$stamp" ]; then exit 0; fi
command -v go >/dev/null || { echo "build-k8s: no Go toolchain on PATH; install Go >= 1.23, then run again" >&2; exit 3; }
work="$out/.wrap"
mkdir -p "$work"
cd "$work"
mod_url="${GOPROXY_URL:-https://proxy.golang.org}/k8s.io/kubernetes/@v/$ver.mod"
# The module's own go.mod names the staging modules; read it through the Go toolchain (no extra HTTP client).
(cd / && GO111MODULE=on GOFLAGS='' go mod download -json "k8s.io/kubernetes@$ver") > dl.json 2>/dev/null || true
gomod=$(python3 -c 'import json,sys; print(json.load(open("dl.json")).get("GoMod",""))' 2>/dev/null || true)
if [ -z "$gomod" ] || [ ! -f "$gomod" ]; then
  echo "build-k8s: could not download k8s.io/kubernetes@$ver from the Go module proxy ($mod_url); check GOPROXY and the network, then run again" >&2
  exit 3
fi
# The staging release of a module: v0.<minor>.<patch> of the pin, or, where the proxy lacks that one
# zip (it happens: k8s.io/endpointslice v0.32.13), the nearest earlier patch of the same minor.
staging_release() {
  local m=$1 minor=${staging_ver#v0.} patch
  patch=${minor#*.}; minor=${minor%%.*}
  while [ "$patch" -ge 0 ]; do
    if (cd / && GO111MODULE=on GOFLAGS='' go mod download "$m@v0.$minor.$patch") >/dev/null 2>&1; then echo "v0.$minor.$patch"; return; fi
    [ "$m@v0.$minor.$patch" = "$m@$staging_ver" ] && echo "build-k8s: $m $staging_ver is not on the module proxy; using an earlier patch" >&2
    patch=$((patch - 1))
  done
  echo "build-k8s: no v0.$minor.x release of $m on the Go module proxy" >&2; return 1
}
{
  echo "module pypiops.local/k8sbuild"
  echo
  echo "go 1.23.0"
  echo
  echo "require k8s.io/kubernetes $ver"
  echo
  echo "replace ("
  while read -r m <&3; do
    case $m in k8s.io/sample-*) continue ;; esac   # examples, never imported by the binaries
    printf '\t%s => %s %s\n' "$m" "$m" "$(staging_release "$m")"
  done 3< <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\1#p' "$gomod")
  echo ")"
} > go.mod.new
mv go.mod.new go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>tidy.log || { tail -20 tidy.log >&2; echo "build-k8s: go mod tidy failed (log above); check the Go module proxy, then run again" >&2; exit 3; }
minor=${ver#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
pkgs=()
for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -tags "providerless" -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
touch "$stamp"
