#!/bin/bash
# The decoder's CUDA backend on the real GPU. Writes $OUT/70-decode.json.
#  1. bin/decode_check on the golden models (data/golden): every CUDA layer against its C twin
#     (fp32, max-abs relative <= 1e-5), whole decodes (sd_small, flux_small, wan_small) tiled vs
#     monolithic on the GPU (<= 1e-5) and GPU vs CPU (<= 1e-4); with IMPLICIT_GEMM forced, conv
#     tiles equal the whole conv bit for bit and tiled-vs-monolithic differing values are a
#     figure; bin/libvramshim_vae.so with device pointers on the check's stream and allocator,
#     and with device CUDA on host buffers, vs its CPU decode. cuDNN 9 and cuBLAS are found as
#     the library finds them; when unset, VRAMSHIM_CUDNN/VRAMSHIM_CUBLAS point at the copies a
#     PyTorch install carries (pip's nvidia-cudnn/nvidia-cublas wheels).
#  2. compute-sanitizer --tool memcheck and --tool racecheck on the same program: 0 errors.
#  3. Benchmark against PyTorch (tools/vae_bench.py: diffusers' AutoencoderKL/AutoencoderKLWan
#     with random weights at SDXL, Flux and Wan 2.1 widths, fp32, against libvramshim_vae.so):
#     time and peak ratios as figures; diffusers comes from the environment or the bundle's
#     wheels/ (make gpu-wheels). VS_BENCH_CASES overrides its --cases. Skipped (with the reason)
#     without torch, a GPU or diffusers.
# Skips (with the reason) what cannot run: no GPU, no cuDNN/cuBLAS, no compute-sanitizer.
# estimate-s: 120
set -u
. "$BUNDLE/check-lib.sh"
check_begin 70-decode
bin="$BUNDLE/bin/decode_check"
data="$BUNDLE/data/golden"
if [ ! -x "$bin" ] || [ ! -d "$data" ]; then
  check_result decode fail '{}' "decode_check or data/golden missing from the bundle"
  exit 0
fi

# cuDNN / cuBLAS from a PyTorch install when the environment names none.
if have_python3 && { [ -z "${VRAMSHIM_CUDNN:-}" ] || [ -z "${VRAMSHIM_CUBLAS:-}" ]; }; then
  site=$("$VS_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
  for lib in "$site"/nvidia/cudnn/lib/libcudnn.so.9; do
    [ -e "$lib" ] && [ -z "${VRAMSHIM_CUDNN:-}" ] && export VRAMSHIM_CUDNN="$lib"
  done
  for lib in "$site"/nvidia/cublas/lib/libcublas.so.13 "$site"/nvidia/cublas/lib/libcublas.so.12; do
    [ -e "$lib" ] && [ -z "${VRAMSHIM_CUBLAS:-}" ] && export VRAMSHIM_CUBLAS="$lib"
  done
fi
echo "VRAMSHIM_CUDNN=${VRAMSHIM_CUDNN:-} VRAMSHIM_CUBLAS=${VRAMSHIM_CUBLAS:-}" >"$work/env.txt"

figs=$(timeout "$(check_time_left)" "$bin" "$data" 2>"$work/decode_check.stderr")
rc=$?
case "$figs" in \{*\}) ;; *) figs='{}' ;; esac
if [ $rc -eq 77 ]; then
  check_result decode skip "$figs" "$(head -n1 "$work/decode_check.stderr" | tr -d '"')"
  exit 0
fi
problems=""
[ $rc -ne 0 ] && problems="decode_check exit $rc: $(head -n3 "$work/decode_check.stderr" | tr '\n"' "; ")"

# compute-sanitizer: memcheck and racecheck, error counts from its summary line.
san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
san_figs='"memcheck_errors":null,"racecheck_errors":null'
if [ -x "$san" ]; then
  for tool in memcheck racecheck; do
    timeout "$(check_time_left)" "$san" --tool "$tool" --error-exitcode 9 "$bin" "$data" >"$work/$tool.log" 2>&1
    src=$?
    n=$(grep -o 'ERROR SUMMARY: [0-9]*' "$work/$tool.log" | tail -n1 | grep -o '[0-9]*$')
    [ -n "$n" ] || n=null
    san_figs=${san_figs/\"${tool}_errors\":null/\"${tool}_errors\":$n}
    if [ "$src" -ne 0 ] || { [ "$n" != null ] && [ "$n" != 0 ]; }; then
      problems="${problems:+$problems; }compute-sanitizer $tool: exit $src, $n errors (see 70-decode/$tool.log)"
    fi
  done
else
  notes="compute-sanitizer not found: memcheck/racecheck skipped"
fi

bench=null
if have_python3; then
  timeout "$(check_time_left)" "$VS_PYTHON" "$BUNDLE/tools/vae_bench.py" --lib "$BUNDLE/bin/libvramshim_vae.so" --work "$work/bench" \
    --wheels "$BUNDLE/wheels" ${VS_BENCH_CASES:+--cases "$VS_BENCH_CASES"} \
    >"$work/bench.json" 2>"$work/bench.stderr"
  brc=$?
  case $brc in
    0) bench=$(cat "$work/bench.json") ;;
    77) notes="${notes:+$notes; }PyTorch benchmark skipped: $(grep -m1 'skipped' "$work/bench.stderr" | tr -d '"')" ;;
    *) problems="${problems:+$problems; }vae_bench exit $brc: $(tail -n2 "$work/bench.stderr" | tr '\n"' "; ")" ;;
  esac
else
  notes="${notes:+$notes; }PyTorch benchmark skipped: no Python (VS_PYTHON)"
fi

figures="{\"decode_check\":$figs,${san_figs},\"bench\":$bench}"
if [ -n "$problems" ]; then
  check_result decode fail "$figures" "$problems${notes:+; $notes}"
else
  check_result decode pass "$figures" "CUDA layers and tiled decodes match the C reference${notes:+; $notes}"
fi
