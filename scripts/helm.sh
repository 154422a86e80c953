#!/usr/bin/env bash
# Builds the helm CLI from source with `go install` into a git-ignored cache folder and prints its path.
# Usage: bash scripts/helm.sh            → prints the path of the helm binary (building it if missing)
#        bash scripts/helm.sh <args…>    → runs that helm with the arguments
#
# Why from source: the only registries reachable here (and in CI) are package registries; the Go module
# proxy serves helm.sh/helm, so `go install` gives a real helm with no binary download. The binary is
# cached under .cache/helm/<version>/bin; a fresh clone rebuilds it, which is quick once the machine's
# Go build cache (~/.cache/go-build) and module cache (~/go/pkg/mod) are warm.
#
# HELM_VERSION overrides the pinned version; WINCHESTER_HELM points at an existing helm binary instead.
set -euo pipefail

# Helm 4: its `install --dry-run=client` renders without contacting a cluster; Helm 3 (through 3.22) still
# checks that a cluster is reachable first, so the chart tests could not run it here.
HELM_VERSION="${HELM_VERSION:-v4.3.1}"
HELM_MAJOR="${HELM_VERSION%%.*}" # v4 → module helm.sh/helm/v4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

helm_path() {
  if [[ -n "${WINCHESTER_HELM:-}" ]]; then
    printf '%s\n' "$WINCHESTER_HELM"
    return
  fi
  local bin="$root/.cache/helm/$HELM_VERSION/bin"
  if [[ ! -x "$bin/helm" ]]; then
    if ! command -v go >/dev/null 2>&1; then
      echo "scripts/helm.sh: go is not on PATH; it is needed to build helm $HELM_VERSION" >&2
      exit 1
    fi
    mkdir -p "$bin"
    local started=$SECONDS
    echo "scripts/helm.sh: building helm $HELM_VERSION with go install (minutes with cold Go caches, seconds with warm ones)" >&2
    # A temporary GOBIN, moved into place at the end, so an interrupted build never leaves a half binary.
    local tmp
    tmp="$(mktemp -d "$root/.cache/helm/.build.XXXXXX")"
    # CGO off: a static binary, and no C toolchain needed.
    if ! CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
      go install -ldflags "-s -w -X helm.sh/helm/$HELM_MAJOR/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/$HELM_MAJOR/cmd/helm@$HELM_VERSION" >&2; then
      rm -rf "$tmp"
      echo "scripts/helm.sh: go install helm.sh/helm/$HELM_MAJOR/cmd/helm@$HELM_VERSION failed" >&2
      exit 1
    fi
    mv "$tmp/helm" "$bin/helm"
    rm -rf "$tmp"
    echo "scripts/helm.sh: built helm $HELM_VERSION in $((SECONDS - started))s" >&2
  fi
  printf '%s\n' "$bin/helm"
}

helm="$(helm_path)"
if [[ $# -eq 0 ]]; then
  printf '%s\n' "$helm"
else
  exec "$helm" "$@"
fi
