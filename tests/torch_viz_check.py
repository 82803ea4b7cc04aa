#!/usr/bin/env python3
"""Reads snapshots with PyTorch's own torch.cuda._memory_viz, as a user of the import-torch
tests' snapshots would, and checks what it reports against the snapshot itself. Needs torch.
Usage: torch_viz_check.py SNAPSHOT.pickle...

For each snapshot: segsum (`python -m torch.cuda._memory_viz stats`, which also checks that
every segment's blocks add up to it), trace (one OOM line per "oom" entry), memory and segments
(the flamegraph lines, given back here instead of fetching the flamegraph script, which needs a
network: their bytes must add up to the segments'), trace_plot with filter_freed (which pairs
every free_completed with its free_requested) and segment_plot. Exits 1 with one line per
failure naming the snapshot and the function."""
import contextlib
import io
import pickle
import sys

from torch.cuda import _memory_viz as viz


def flame_bytes(lines):
    return sum(int(line.rsplit(" ", 1)[1]) for line in lines.splitlines() if line)


def check(path):
    with open(path, "rb") as f:
        snap = pickle.load(f)
    entries = [e for dev in snap["device_traces"] for e in dev]
    segment_bytes = sum(s["total_size"] for s in snap["segments"])
    block_bytes = sum(b["size"] for s in snap["segments"] for b in s["blocks"])
    problems = []
    if block_bytes != segment_bytes:
        problems.append(f"blocks hold {block_bytes} bytes, segments {segment_bytes}")
    report = viz.segsum(snap)
    if f"segments: {len(snap['segments'])}\n" not in report:
        problems.append(f"segsum does not count {len(snap['segments'])} segments:\n{report}")
    text = viz.trace(snap)
    ooms = sum(e["action"] == "oom" for e in entries)
    if text.count("raise OutOfMemoryError") != ooms:
        problems.append(f"trace does not show the {ooms} OOMs:\n{text}")
    for fn in (viz.memory, viz.segments):
        got = flame_bytes(fn(snap, format_flamegraph=lambda lines: lines))
        if got != segment_bytes:
            problems.append(f"{fn.__name__} accounts for {got} bytes, not {segment_bytes}")
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        html = viz.trace_plot(snap, filter_freed=True) + viz.segment_plot(snap)
    if said.getvalue():
        problems.append(f"trace_plot: {said.getvalue().strip()}")
    if "<html" not in html.lower():
        problems.append("trace_plot/segment_plot wrote no HTML page")
    return [f"{path}: {p}" for p in problems]


def main():
    failures = []
    for path in sys.argv[1:]:
        try:
            failures += check(path)
        except Exception as exc:  # what torch's reader raised is the finding
            failures.append(f"{path}: _memory_viz failed: {type(exc).__name__}: {exc}")
    for line in failures:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
