#!/usr/bin/env bash
# Build CoreDNS (the cluster DNS) from its Go module with only the plugins the local cluster uses:
# bind, errors, health, ready, kubernetes, cache. No "forward": names outside cluster.local get no answer,
# so nothing in the cluster resolves or reaches a host off this machine.
# Usage: build-coredns.sh OUT_DIR   (COREDNS_VERSION overrides the pin). Idempotent.
set -euo pipefail
out=${1:?usage: build-coredns.sh OUT_DIR}
ver=${COREDNS_VERSION:-v1.12.1}
stamp="$out/.coredns-$ver-2"  # -N: bumped when the plugin list changes
[ -f "$stamp" ] && exit 0
command -v go >/dev/null || { echo "build-coredns: no Go toolchain on PATH; install Go, then run again" >&2; exit 3; }
work="$out/.coredns-wrap"
mkdir -p "$work" && cd "$work"
cat > go.mod <<MOD
module pypiops.local/corednsbuild

go 1.23.0

require github.com/coredns/coredns $ver
MOD
cat > main.go <<'GO'
// CoreDNS with a fixed, small plugin chain (the order is the order of execution).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

var directives = []string{"bind", "errors", "health", "ready", "cache", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
GO
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>tidy.log || { tail -20 tidy.log >&2; echo "build-coredns: go mod tidy failed (log above); check the Go module proxy, then run again" >&2; exit 3; }
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/coredns" .
touch "$stamp"
