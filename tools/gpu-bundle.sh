#!/bin/bash
# Builds the self-contained real-GPU check bundle: BUILD -> OUT (docs/gpu-checks.md).
#   OUT/run.sh            runs every check within a time budget, writes the report
#   OUT/REQUIRES          the oldest glibc and driver the bundle runs on (run.sh checks glibc)
#   OUT/bin/              the shim, the CLI, the decoder library, the check programs and the test programs a check
#                         runs (nothing else); rpath $ORIGIN/lib only
#   OUT/bin/lib/          every shared library they need beyond glibc and the NVIDIA driver
#   OUT/bin/sim/          simcuda, for `vramshim replay` only (no search path leads to it)
#   OUT/checks/NN-*.sh    one script per check, run in order; NN-*.py their Python halves
#   OUT/check-lib.sh      shell functions the checks share; OUT/gpucheck.py the Python ones
#   OUT/workloads/        the PyTorch workloads the checks run (torchwork.py: their shared set-up)
#   OUT/bin/demo/         the demo generator programs (`vramshim demo --device real`)
#   OUT/policy/examples/  the example policies (found by vramshim as bin/../policy/examples)
#   OUT/python/           the Python package; python/tests/ the Python check's programs
#   OUT/data/golden/      the decoder check's small models and latents (tests/golden)
#   OUT/tools/vae_bench.py, OUT/wheels/  the decoder's PyTorch benchmark and diffusers' wheels
set -eu
build=$1
out=$2
# What one device call carries (64 MiB in all, with the command's tree). VS_BUNDLE_MAX_MIB raises it
# only for the ASan test build, whose binaries are three times larger and never travel.
max_mib=${VS_BUNDLE_MAX_MIB:-48}
case $max_mib in
  '' | *[!0-9]*)
    echo "gpu-bundle: VS_BUNDLE_MAX_MIB=\"$max_mib\" is not a whole number of MiB" >&2
    exit 2
    ;;
esac
max_bytes=$((max_mib * 1024 * 1024))

rm -rf "$out"
mkdir -p "$out/bin/lib" "$out/bin/sim" "$out/checks"
cp "$build/sim/libcuda.so.1" "$out/bin/sim/"

cp "$build/libvramshim.so" "$build/vramshim" "$build"/gpucheck/* "$out/bin/"
# the decoder's library, beside the CLI (decode --device cuda) and decode_check, which dlopen it
cp "$build/libvramshim_vae.so" "$out/bin/"
# Test programs only where a check runs them.
for prog in "$build"/tests/progs/*; do
  if grep -qw "$(basename "$prog")" tools/gpucheck/checks/*; then cp "$prog" "$out/bin/"; fi
done
cp -r "$build/demo" "$out/bin/demo"
mkdir -p "$out/policy" && cp -r policy/examples "$out/policy/examples"
cp tools/gpucheck/checks/[0-9][0-9]-*.sh tools/gpucheck/checks/[0-9][0-9]-*.py "$out/checks/"
cp tools/gpucheck/check-lib.sh tools/gpucheck/gpucheck.py tools/gpucheck/run.sh "$out/"
cp -r tools/gpucheck/workloads "$out/workloads"
cp -r python "$out/python"
# The Python check's programs (60-python): tests/progs/py_* and the Python demo generator.
mkdir -p "$out/python/tests" && cp tests/progs/py_* tools/demo/python_*.py "$out/python/tests/"
find "$out" -name __pycache__ -prune -exec rm -rf {} +
# The decoder check's models and latents (70-decode.sh).
mkdir -p "$out/data/golden" && cp tests/golden/*.safetensors "$out/data/golden/"
# The decoder check's PyTorch benchmark and the wheels that bring diffusers to a machine
# without a package index (make gpu-wheels; absent: the machine's diffusers, or a skip).
mkdir -p "$out/tools" && cp tools/gpucheck/vae_bench.py "$out/tools/"
if [ -d "$build/wheels" ]; then cp -r "$build/wheels" "$out/wheels"; fi
git rev-parse HEAD >"$out/COMMIT" 2>/dev/null || echo unknown >"$out/COMMIT"
if git status --porcelain 2>/dev/null | grep -q .; then echo "+dirty" >>"$out/COMMIT"; fi

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = ELF ]; }
# Libraries a bare Linux with an NVIDIA driver lacks: everything but glibc and the driver.
is_base() {
  case "$1" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libcuda.so*|linux-vdso*) return 0 ;;
  esac
  return 1
}
for elf in "$out"/bin/* "$out"/bin/demo/*; do
  is_elf "$elf" || continue
  ldd "$elf" 2>/dev/null | awk '/=> \// {print $1, $3}' | while read -r name path; do
    is_base "$name" && continue
    [ -e "$out/bin/lib/$name" ] || cp -L "$path" "$out/bin/lib/$name"
  done
done

# Nothing may look for libraries on the build machine: every search path is $ORIGIN-relative.
for elf in "$out"/bin/* "$out"/bin/demo/* "$out"/bin/lib/* "$out"/bin/sim/*; do
  is_elf "$elf" || continue
  paths=$(readelf -d "$elf" | sed -n 's/.*(R[UN]*PATH).*\[\(.*\)\]/\1/p' | tr ':' '\n' | grep -v '^\$ORIGIN' || true)
  if [ -n "$paths" ]; then
    echo "gpu-bundle: ${elf#"$out"/} searches $paths (build-machine path)" >&2
    exit 1
  fi
done

# The newest glibc symbol version any binary needs is the oldest glibc the bundle runs on.
glibc=$(for elf in "$out"/bin/* "$out"/bin/demo/* "$out"/bin/lib/*; do
  is_elf "$elf" && objdump -T "$elf"
done | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
{
  echo "glibc $glibc"
  # Host-NUMA cuMemCreate (demotion) and CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID came with CUDA 12.2.
  echo "driver CUDA 12.2 (R535) for eviction; VMM and stream-ordered allocation from CUDA 11.2 (R460)"
} >"$out/REQUIRES"

size=$(du -sb "$out" | cut -f1)
if [ "$size" -gt "$max_bytes" ]; then
  echo "gpu-bundle: $out is $size bytes, over the $max_mib MiB limit" >&2
  exit 1
fi
echo "gpu-bundle: wrote $out ($((size / 1024)) KiB, glibc >= $glibc, commit $(head -c 12 "$out/COMMIT"))"
