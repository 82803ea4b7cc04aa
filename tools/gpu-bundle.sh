#!/bin/bash
# Builds the self-contained real-GPU check bundle: BUILD -> OUT.
#   OUT/run.sh            runs every check, writes report.json and report.txt
#   OUT/bin/              shim, CLI, decoder library, check and test programs (rpath $ORIGIN/lib)
#   OUT/bin/lib/          every shared library they need beyond glibc and the NVIDIA driver
#   OUT/bin/sim/          simcuda, for comparisons
#   OUT/checks/NN-*.sh    one script per check, run in order
#   OUT/check-lib.sh      shell functions the checks share
#   OUT/bin/demo/         the demo generator programs (`vramshim demo --device real`)
#   OUT/policy/examples/  the example policies (found by vramshim as bin/../policy/examples)
#   OUT/python/           the Python package, when present; python/tests/ its checks' programs
#   OUT/data/golden/      the decoder check's small models and latents (tests/golden)
#   OUT/tools/vae_bench.py, OUT/wheels/  the decoder's PyTorch benchmark and diffusers' wheels
set -eu
build=$1
out=$2
max_bytes=$((48 * 1024 * 1024))

rm -rf "$out"
mkdir -p "$out/bin/lib" "$out/bin/sim" "$out/checks"

cp "$build/libvramshim.so" "$build/vramshim" "$out/bin/"
# the decoder's library, beside the CLI (decode --device cuda) and decode_check, which dlopen it
cp "$build/libvramshim_vae.so" "$out/bin/"
cp "$build/sim/libcuda.so.1" "$out/bin/sim/"
cp "$build"/gpucheck/* "$out/bin/" 2>/dev/null || true
[ -d "$build/tests/progs" ] && cp "$build"/tests/progs/* "$out/bin/"
[ -d "$build/bench" ] && cp "$build"/bench/* "$out/bin/"
cp -r "$build/demo" "$out/bin/demo"
mkdir -p "$out/policy" && cp -r policy/examples "$out/policy/examples"
cp tools/gpucheck/checks/*.sh "$out/checks/"
cp tools/gpucheck/check-lib.sh "$out/check-lib.sh"
# The decoder check's models and latents, its PyTorch benchmark and the wheels that bring
# diffusers to a machine without a package index (make gpu-wheels; absent: the benchmark uses
# the machine's diffusers or is skipped) (70-decode.sh).
mkdir -p "$out/data/golden" && cp tests/golden/*.safetensors "$out/data/golden/"
mkdir -p "$out/tools" && cp tools/gpucheck/vae_bench.py "$out/tools/"
[ -d "$build/wheels" ] && cp -r "$build/wheels" "$out/wheels"
[ -d python ] && cp -r python "$out/python"
# The Python checks' programs (60-python.sh): tests/progs/py_* and the Python demo generator.
[ -d python ] && mkdir -p "$out/python/tests" && cp tests/progs/py_* tools/demo/python_*.py "$out/python/tests/"
cp tools/gpucheck/run.sh "$out/run.sh"
git rev-parse HEAD >"$out/COMMIT" 2>/dev/null || echo unknown >"$out/COMMIT"
git status --porcelain 2>/dev/null | grep -q . && echo "+dirty" >>"$out/COMMIT"

# Libraries a bare Linux with an NVIDIA driver lacks: everything but glibc and the driver.
is_base() {
  case "$1" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libcuda.so*|linux-vdso*) return 0 ;;
  esac
  return 1
}
for elf in "$out"/bin/* "$out"/bin/sim/* "$out"/bin/demo/*; do
  [ -f "$elf" ] && [ "$(head -c 4 "$elf" | tail -c 3)" = ELF ] || continue
  ldd "$elf" 2>/dev/null | awk '/=> \// {print $1, $3}' | while read -r name path; do
    is_base "$name" && continue
    [ -e "$out/bin/lib/$name" ] || cp -L "$path" "$out/bin/lib/$name"
  done
done

size=$(du -sb "$out" | cut -f1)
if [ "$size" -gt "$max_bytes" ]; then
  echo "gpu-bundle: $out is $size bytes, over the 48 MiB limit" >&2
  exit 1
fi
echo "gpu-bundle: wrote $out ($((size / 1024)) KiB, commit $(head -c 12 "$out/COMMIT"))"
