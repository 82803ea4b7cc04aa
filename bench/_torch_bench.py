"""What the decoder benchmarks against PyTorch (bench/bench_decode*_torch.py) share: the set-up
and the timing. bench/run.sh runs every bench/*.py but those named _*: this is not a benchmark."""
import os
import sys
import time


def start():
    """Exits, printing why, unless under Python 3.11 (the figures do not depend on the interpreter:
    measured once); puts the repository's python/ first on sys.path; seeds torch with 0 and gives
    it as many threads as the library uses (all CPUs: kernels/cpu/parallel.c). Returns the thread
    count."""
    if sys.version_info[:2] != (3, 11):
        print("skipped: measured once, under Python 3.11")
        sys.exit(0)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import torch

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return threads


def best(f):
    """(wall s, CPU s, output) of the run of f with the least CPU time, of two. CPU time is the
    process's over all threads: the figure the targets are on, which other load on a shared
    machine inflates less than wall time."""
    runs = []
    for _ in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        out = f()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu, out))
    return min(runs, key=lambda r: r[1])


def compare(vae, z):
    """Times diffusers' decode of z with vae, then vramshim.decode.decode's (exact, one tile),
    each by best(), and prints both, the ratios and the max-abs difference."""
    import torch

    import vramshim.decode as vd

    with torch.no_grad():
        w_torch, c_torch, want = best(lambda: vae.decode(z).sample)
        w_ours, c_ours, got = best(lambda: vd.decode(vae, z, budget="64GiB"))
    print("  PyTorch %s  wall %.2f s  CPU %.2f s" % (torch.__version__, w_torch, c_torch))
    print("  vramshim CPU  wall %.2f s  CPU %.2f s  (wall x%.2f, CPU x%.2f PyTorch)  max-abs %.2g"
          % (w_ours, c_ours, w_ours / w_torch, c_ours / c_torch, (got - want).abs().max().item()))
