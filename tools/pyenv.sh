#!/bin/bash
# The cached virtual environments with real PyTorch, diffusers, transformers and accelerate (CPU)
# in which the tests of the Python auto-hook run (tests/test_python_autohook.c).
#
#   tools/pyenv.sh ensure 3.11 3.12   creates each missing or outdated one (make test calls it)
#   tools/pyenv.sh path 3.12          prints its python; exit 3 with the reason if not ready
#
# They live outside build/ (make clean keeps them): $VS_PYENV_DIR, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/vramshim/venv-X.Y. One is ready when its stamp holds the
# pinned requirements (tools/pyenv/requirements.txt) and the interpreter version, so an
# unchanged one costs nothing. Base interpreter: pythonX.Y on PATH, else pyenv's newest X.Y
# ($PYENV_ROOT, default ~/.pyenv). A version with no interpreter is reported and skipped.
# PyPI's Linux torch wheel links the CUDA libraries, so it comes with its nvidia-* packages
# (about 3 GiB); PyPI has no CPU-only build, and torch does not import without them.
set -u
here=$(cd "$(dirname "$0")" && pwd)
reqs=$here/pyenv/requirements.txt
root=${VS_PYENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vramshim}

base_python() {  # the interpreter X.Y to build on, or nothing
  local v=$1 p
  if p=$(command -v "python$v" 2>/dev/null) && "$p" -c 1 2>/dev/null; then echo "$p"; return; fi
  for p in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v".* 2>/dev/null | sort -V -r); do
    [ -x "$p/bin/python$v" ] && { echo "$p/bin/python$v"; return; }
  done
}

stamp_of() {  # what a ready environment's stamp holds
  { "$1" -c 'import sys; print(sys.version)'; cat "$reqs"; } | sha256sum | cut -d' ' -f1
}

ready() {  # ready VERSION: prints the environment's python when it is ready
  local py=$root/venv-$1/bin/python
  [ -x "$py" ] && [ -f "$root/venv-$1/vramshim-stamp" ] &&
    [ "$(cat "$root/venv-$1/vramshim-stamp")" = "$(stamp_of "$py")" ] && echo "$py"
}

ensure() {
  local v=$1 base dir=$root/venv-$1 t0
  ready "$v" >/dev/null && return 0
  base=$(base_python "$v")
  if [ -z "$base" ]; then
    echo "pyenv: no Python $v (neither python$v on PATH nor pyenv's ${PYENV_ROOT:-$HOME/.pyenv}/versions/$v.*): its tests will be skipped (docs/python.md says how to get one)" >&2
    return 0
  fi
  echo "pyenv: creating $dir from $base and PyPI (torch with its CUDA libraries: ~3 GiB, minutes the first time)" >&2
  t0=$SECONDS
  rm -rf "$dir" && "$base" -m venv "$dir" &&
    "$dir/bin/python" -m pip install -q --upgrade pip &&
    "$dir/bin/python" -m pip install -q -r "$reqs" || {
      echo "pyenv: could not create $dir (see above); its tests will be skipped" >&2
      rm -rf "$dir"
      return 1
    }
  stamp_of "$dir/bin/python" >"$dir/vramshim-stamp"
  echo "pyenv: $dir ready in $((SECONDS - t0)) s" >&2
}

case "${1:-}" in
  ensure)
    shift
    mkdir -p "$root" || exit 1
    exec 9>"$root/.lock" && flock 9  # one creator at a time
    status=0
    for v in "$@"; do ensure "$v" || status=1; done
    exit $status ;;
  path)
    [ $# -eq 2 ] || { echo "usage: $0 path X.Y" >&2; exit 2; }
    ready "$2" && exit 0
    if [ -z "$(base_python "$2")" ]; then
      echo "no Python $2 (python$2 on PATH or pyenv's); see docs/python.md"
    else
      echo "$root/venv-$2 is not ready: run tools/pyenv.sh ensure $2 (make test does)"
    fi
    exit 3 ;;
  *) echo "usage: $0 ensure X.Y... | path X.Y" >&2; exit 2 ;;
esac
