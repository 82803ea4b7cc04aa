#!/bin/bash
# Python programs under `vramshim run` on the real driver, with the GPU machine's Python (3.12+:
# the sys.monitoring auto-hook, which the development machine's 3.11 cannot run); the work is in
# checks/60-python.py.
#  1. stages: tests/progs/py_stages.py under its policy prints exactly py_stages.expected
#     (stage entry/exit from function entry and exit, exceptions, generators, recursion, classes
#     and modules defined later, vramshim.stage); exit status 7 and SIGTERM (143) come through.
#  2. trace: py_trace.py's allocations (ctypes.PyDLL keeping the GIL, ctypes.CDLL releasing it,
#     a second thread) carry their py:FILE:LINE:QUALNAME frames; py_deadlock.py (an allocation
#     under a lock that a GIL holder waits for) finishes.
#  3. demo: tools/demo/python_wan.py with another process holding all but 11766 MiB (the
#     12 GB GPU of the reported failure): out of memory in pass-through, completes under vramshim
#     with policy/examples/wan21-t2v-1.3b-12gb.ini with the video checksum of an unconstrained run.
#  4. torch (skipped without PyTorch with CUDA): py_torch_vae.py loads a 3 GiB "diffusion
#     model" with 6.5 GiB left free, then VAE.decode needs 3.5 GiB: out of memory in
#     pass-through, completes under vramshim (policy py_torch_vae.ini) with the output of an
#     unconstrained run bit for bit, and the trace shows the script's Python frames.
# estimate-s: 90
set -u
. "$BUNDLE/check-lib.sh"
check_begin 60-python
check_python 60-python python
