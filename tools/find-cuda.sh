#!/bin/sh
# Prints the CUDA toolkit root: $CUDA_HOME, else /usr/local/cuda, else the nvcc on PATH.
# Exits 1 with nothing printed when none is found.
for root in "${CUDA_HOME:-}" /usr/local/cuda; do
  if [ -n "$root" ] && [ -x "$root/bin/nvcc" ] && [ -f "$root/include/cuda.h" ]; then
    echo "$root"; exit 0
  fi
done
if nvcc=$(command -v nvcc 2>/dev/null); then
  root=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
  [ -f "$root/include/cuda.h" ] && { echo "$root"; exit 0; }
fi
exit 1
