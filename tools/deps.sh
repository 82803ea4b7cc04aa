#!/bin/sh
# Installs the Debian packages vramshim builds against, or says how to.
# Called by `make deps`, and by `make test`/`make demo` the first time.
set -eu
PKGS="build-essential pkg-config uthash-dev libcriterion-dev libinih-dev libjansson-dev libspng-dev libmimalloc-dev valgrind python3"
# `make fuzz` calls `tools/deps.sh fuzz`: libFuzzer comes with Debian's clang.
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-14-dev"

missing=""
# chromium: the timeline tests open its pages in a headless browser; tmux: `vramshim top`'s test
PKGS="$PKGS chromium tmux"
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

if ! tools/find-cuda.sh >/dev/null; then
  echo "deps: CUDA toolkit not found: looked at \$CUDA_HOME, /usr/local/cuda and nvcc on PATH." >&2
  echo "deps: install the CUDA Toolkit (nvcc and headers) or set CUDA_HOME." >&2
  exit 1
fi
echo "deps: all present (CUDA toolkit at $(tools/find-cuda.sh))"
